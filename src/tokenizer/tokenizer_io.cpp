// Tokenizer from and to an HF model folder: which file to read, what tokenizer_config.json
// and special_tokens_map.json change, and the three files save() writes.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lathe {

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  LATHE_CHECK(f, p.string(), ": cannot open");
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

json parse_json(const std::string& text, const std::string& path) {
  try {
    json j = json::parse(text);
    LATHE_CHECK(j.is_object(), path, ": expected a JSON object");
    return j;
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
}

// Writes next to the target and renames, so a crash never leaves half a file.
void write_atomic(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    LATHE_CHECK(f, tmp.string(), ": cannot create");
    f << text;
    f.flush();
    if (!f) {
      const int err = errno;
      std::error_code ec;
      fs::remove(tmp, ec);
      fail("cannot write ", tmp.string(), ": ", std::strerror(err),
           err == ENOSPC ? " (the disk is full; free space and retry)" : "");
    }
  }
  fs::rename(tmp, p);
}

// A special-token entry: "<s>", {"content": "<s>", ...} (AddedToken), or null (none).
// nullopt when the key is absent.
std::optional<std::string> token_name(const json& j, const char* key, const std::string& path) {
  if (!j.contains(key)) return std::nullopt;
  const json& v = j[key];
  if (v.is_null()) return std::string();
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  fail(path, ": ", key, " must be a string, an object with \"content\", or null; got ", v.dump());
}

std::optional<bool> flag(const json& j, const char* key, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  LATHE_CHECK(j[key].is_boolean(), path, ": ", key, " must be true or false; got ", j[key].dump());
  return j[key].get<bool>();
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& folder) {
  const fs::path dir(folder);
  LATHE_CHECK(
      fs::is_directory(dir), folder,
      ": not a folder (expected an HF model folder with tokenizer.json or tokenizer.model)");
  const bool from_json = fs::exists(dir / "tokenizer.json");
  tok::Model m;
  if (from_json) {
    m = tok::load_hf_tokenizer_json((dir / "tokenizer.json").string());
  } else if (fs::exists(dir / "tokenizer.model")) {
    m = tok::load_tokenizer_model((dir / "tokenizer.model").string());
  } else {
    fail(folder, ": no tokenizer.json or tokenizer.model");
  }
  const fs::path config_path = dir / "tokenizer_config.json";
  const fs::path map_path = dir / "special_tokens_map.json";
  const std::string config_text = fs::exists(config_path) ? read_text(config_path) : "";
  const std::string map_text = fs::exists(map_path) ? read_text(map_path) : "";
  if (!config_text.empty()) {
    // added_tokens_decoder declares the added tokens by id. tokenizer.json already lists
    // them (and wins on a conflict: it is what HF's fast tokenizer runs); for a
    // tokenizer.model the config is the only source, and it replaces the defaults (Llama
    // 3's reserved-token names differ between releases).
    const json config = parse_json(config_text, config_path.string());
    if (config.contains("added_tokens_decoder")) {
      try {
        for (const auto& [key, v] : config["added_tokens_decoder"].items()) {
          tok::AddedToken a;
          a.id = std::stoi(key);
          a.content = v.at("content").get<std::string>();
          a.special = v.value("special", false);
          a.lstrip = v.value("lstrip", false);
          a.rstrip = v.value("rstrip", false);
          a.single_word = v.value("single_word", false);
          a.normalized = v.value("normalized", !a.special);
          LATHE_CHECK(a.id >= 0 && !a.content.empty(), config_path.string(),
                      ": added_tokens_decoder entry ", key, " needs an id >= 0 and content");
          auto same_id = std::find_if(m.added.begin(), m.added.end(),
                                      [&](const tok::AddedToken& t) { return t.id == a.id; });
          if (same_id != m.added.end()) {
            if (!from_json) *same_id = a;
            continue;
          }
          const bool content_taken =
              std::any_of(m.added.begin(), m.added.end(),
                          [&](const tok::AddedToken& t) { return t.content == a.content; });
          if (!content_taken) m.added.push_back(a);
        }
      } catch (const std::exception& e) {
        fail(config_path.string(), ": bad added_tokens_decoder: ", e.what());
      }
    }
  }
  auto t = std::make_unique<Tokenizer>(std::move(m));
  t->apply_config(config_text, config_path.string(), map_text, map_path.string());
  return t;
}

void Tokenizer::apply_config(const std::string& config_text, const std::string& config_path,
                             const std::string& map_text, const std::string& map_path) {
  // Defaults from the model file: tokenizer.json's post_processor template, or the
  // SentencePiece trainer spec / Llama 3 conventions for a tokenizer.model.
  std::string names[4] = {m_.has_template ? m_.template_bos : m_.bos_token,
                          m_.has_template ? m_.template_eos : m_.eos_token, m_.pad_token,
                          m_.unk_token};
  std::string sources[4];
  static const char* const kKeys[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};
  json config = json::object();
  if (!config_text.empty()) config = parse_json(config_text, config_path);
  // transformers applies special_tokens_map.json over tokenizer_config.json.
  const json special_map = map_text.empty() ? json::object() : parse_json(map_text, map_path);
  for (int k = 0; k < 4; ++k) {
    if (auto v = token_name(config, kKeys[k], config_path)) names[k] = *v, sources[k] = config_path;
    if (auto v = token_name(special_map, kKeys[k], map_path)) names[k] = *v, sources[k] = map_path;
  }
  int32_t* const ids[4] = {&bos_id_, &eos_id_, &pad_id_, &unk_id_};
  for (int k = 0; k < 4; ++k) {
    *ids[k] = -1;
    if (names[k].empty()) continue;
    const std::optional<int32_t> id = find(names[k]);
    LATHE_CHECK(id.has_value(), sources[k].empty() ? m_.source : sources[k], ": ", kKeys[k], " \"",
                names[k], "\" is not a token of this tokenizer");
    *ids[k] = *id;
  }
  // add_bos_token / add_eos_token as LlamaTokenizer(Fast) reads them; without them the
  // tokenizer.json post_processor decides, and a bare tokenizer.model adds BOS when it has
  // one (Llama 2's LlamaTokenizer default and Meta's Llama 3 encode(bos=True)).
  const std::optional<bool> cfg_bos = flag(config, "add_bos_token", config_path);
  const std::optional<bool> cfg_eos = flag(config, "add_eos_token", config_path);
  add_bos_ = cfg_bos ? *cfg_bos : m_.has_template ? !m_.template_bos.empty() : bos_id_ >= 0;
  add_eos_ = cfg_eos ? *cfg_eos : m_.has_template ? !m_.template_eos.empty() : false;
  const std::string& where = config_path.empty() ? m_.source : config_path;
  LATHE_CHECK(!add_bos_ || bos_id_ >= 0, where, ": adds BOS but no bos_token is set");
  LATHE_CHECK(!add_eos_ || eos_id_ >= 0, where, ": adds EOS but no eos_token is set");
  additional_special_.clear();
  for (const json* j : {static_cast<const json*>(&config), &special_map}) {
    if (!j->contains("additional_special_tokens")) continue;
    for (const json& v : (*j)["additional_special_tokens"]) {
      const std::string name = v.is_string() ? v.get<std::string>() : v.value("content", "");
      if (!name.empty() && std::find(additional_special_.begin(), additional_special_.end(),
                                     name) == additional_special_.end()) {
        additional_special_.push_back(name);
      }
    }
  }
  config_json_ = config_text;
  special_map_json_ = map_text;
}

std::vector<int32_t> Tokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  std::vector<int32_t> ids;
  for (const std::string& t : tokens) {
    LATHE_CHECK(!t.empty(), "add_special_tokens: a special token cannot be empty");
    int32_t id;
    if (auto it = added_ids_.find(t); it != added_ids_.end()) {
      id = it->second;
    } else {
      // A plain vocabulary token keeps its id and becomes special (matched literally),
      // as HF's add_special_tokens does; a new one gets the next id.
      const std::optional<int32_t> existing = find(t);
      id = existing ? *existing : vocab_size();
      m_.added.push_back(tok::AddedToken{t, id});
      rebuild_added();
    }
    ids.push_back(id);
    if (std::find(additional_special_.begin(), additional_special_.end(), t) ==
        additional_special_.end()) {
      additional_special_.push_back(t);
    }
  }
  return ids;
}

namespace {

json token_object(const tok::AddedToken& a) {
  return json{{"content", a.content}, {"lstrip", a.lstrip},           {"normalized", a.normalized},
              {"rstrip", a.rstrip},   {"single_word", a.single_word}, {"special", a.special}};
}

}  // namespace

void Tokenizer::save(const std::string& folder) const {
  const fs::path dir(folder);
  fs::create_directories(dir);
  // A tokenizer.model carries no post-processor; write the one HF's converters write, so
  // AutoTokenizer adds BOS/EOS as this tokenizer does.
  std::string post = m_.post_processor_json;
  if (!m_.has_template) {
    json single = json::array(), pair = json::array(), specials = json::object();
    auto special = [&](int32_t id, int type_id) {
      const std::string& name = tokens_[size_t(id)];
      specials[name] = json{{"id", name}, {"ids", {id}}, {"tokens", {name}}};
      return json{{"SpecialToken", {{"id", name}, {"type_id", type_id}}}};
    };
    for (int type_id = 0; type_id < 2; ++type_id) {
      json& seq = type_id == 0 ? single : pair;
      if (type_id == 1) seq = single;
      if (add_bos_) seq.push_back(special(bos_id_, type_id));
      seq.push_back(json{{"Sequence", {{"id", type_id == 0 ? "A" : "B"}, {"type_id", type_id}}}});
      if (add_eos_) seq.push_back(special(eos_id_, type_id));
    }
    json tmpl = {{"type", "TemplateProcessing"},
                 {"single", single},
                 {"pair", pair},
                 {"special_tokens", specials}};
    const bool templ = add_bos_ || add_eos_;
    if (m_.kind == tok::Kind::kByteLevel) {
      json bl = {{"type", "ByteLevel"},
                 {"add_prefix_space", true},
                 {"trim_offsets", false},
                 {"use_regex", true}};
      post = templ ? json{{"type", "Sequence"}, {"processors", {bl, tmpl}}}.dump() : bl.dump();
    } else {
      post = templ ? tmpl.dump() : "";
    }
  }
  write_atomic(dir / "tokenizer.json", tok::hf_tokenizer_json_text(m_, post));

  json config = config_json_.empty() ? json::object() : json::parse(config_json_);
  json decoder = json::object();
  std::vector<tok::AddedToken> added = m_.added;
  std::sort(added.begin(), added.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const tok::AddedToken& a : added) decoder[std::to_string(a.id)] = token_object(a);
  config["added_tokens_decoder"] = decoder;
  config["add_bos_token"] = add_bos_;
  config["add_eos_token"] = add_eos_;
  json special_map = special_map_json_.empty() ? json::object() : json::parse(special_map_json_);
  const std::pair<const char*, int32_t> roles[] = {{"bos_token", bos_id_},
                                                   {"eos_token", eos_id_},
                                                   {"pad_token", pad_id_},
                                                   {"unk_token", unk_id_}};
  for (const auto& [key, id] : roles) {
    config[key] = id >= 0 ? json(tokens_[size_t(id)]) : json();
    if (id >= 0) {
      special_map[key] = json{{"content", tokens_[size_t(id)]},
                              {"lstrip", false},
                              {"normalized", false},
                              {"rstrip", false},
                              {"single_word", false}};
    } else {
      special_map.erase(key);
    }
  }
  if (!additional_special_.empty()) {
    config["additional_special_tokens"] = additional_special_;
    special_map["additional_special_tokens"] = additional_special_;
  }
  if (!config.contains("tokenizer_class")) {
    config["tokenizer_class"] =
        m_.kind == tok::Kind::kByteLevel ? "PreTrainedTokenizerFast" : "LlamaTokenizerFast";
  }
  // decode() never applies transformers' clean-up (it would break decode(encode(x)) == x).
  if (!config.contains("clean_up_tokenization_spaces"))
    config["clean_up_tokenization_spaces"] = false;
  write_atomic(dir / "tokenizer_config.json", config.dump(2) + "\n");
  write_atomic(dir / "special_tokens_map.json", special_map.dump(2) + "\n");
}

}  // namespace lathe
