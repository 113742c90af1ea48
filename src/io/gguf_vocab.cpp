// Tokenizer metadata for GGUF (gguf_vocab.h). The rules, and the names in the comments, are
// those of convert_hf_to_gguf.py (TextModel._create_vocab_sentencepiece, get_vocab_base,
// LlamaModel.set_vocab) and gguf-py's vocab.py (LlamaHfVocab, SpecialVocab) in llama.cpp as
// vendored by llama-cpp-python 0.3.36 (which is newer than PyPI's gguf 0.19.0 in two rules
// of SpecialVocab, marked below); tests/io/gguf_export_test.py checks the result against
// gguf-py's SpecialVocab, tests/io/llama_cpp_check.py against the converter itself.
#include "io/gguf_vocab.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "core/json_number.h"
#include "io/gguf_writer.h"
#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// llama.cpp's token types (SentencePiece's piece types, plus what the converter assigns).
enum TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

constexpr const char* kSpaceMark = "\xE2\x96\x81";  // "▁"

json read_json(const fs::path& p) {
  if (!fs::exists(p)) return json();
  std::ifstream f(p, std::ios::binary);
  LATHE_CHECK(f, p.string(), ": cannot open");
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    fail(p.string(), ": not valid JSON: ", e.what());
  }
}

// obj[key] when obj is an object holding it, else null (Python's dict.get).
json get(const json& obj, const char* key) {
  return obj.is_object() && obj.contains(key) ? obj[key] : json();
}

// Python truthiness of a JSON value: null, "", {}, [], false and 0 are false.
bool truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  if (v.is_object() || v.is_array()) return !v.empty();
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  return true;
}

bool starts_ends(const std::string& s, const std::string& a, const std::string& b) {
  return s.size() >= a.size() + b.size() && s.compare(0, a.size(), a) == 0 &&
         s.compare(s.size() - b.size(), b.size(), b) == 0;
}

// TextModel.does_token_look_special: added tokens some models forget to mark special.
bool looks_special(const std::string& t) {
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" ||
         starts_ends(t, "<|", "|>") || starts_ends(t, "<\xEF\xBD\x9C", "\xEF\xBD\x9C>") ||
         starts_ends(t, "<unused", ">");
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

bool is_byte_piece(const std::string& t) {
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

// A Python dict's behaviour: keys in first-insertion order (the order the converter writes
// them in), a later assignment replaces the value in place.
template <class T>
struct InsertionOrdered {
  std::vector<std::pair<std::string, T>> items;
  T& operator[](const std::string& key) {
    for (auto& [k, v] : items)
      if (k == key) return v;
    return items.emplace_back(key, T{}).second;
  }
  bool count(const std::string& key) const {
    for (const auto& kv : items)
      if (kv.first == key) return true;
    return false;
  }
  auto begin() const { return items.begin(); }
  auto end() const { return items.end(); }
};

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;  // empty: none written (gpt2)
  std::vector<int32_t> types;
};

Vocab padded_vocab(int64_t n, float score) {
  Vocab v;
  for (int64_t i = 0; i < n; ++i) v.tokens.push_back("[PAD" + std::to_string(i) + "]");
  v.scores.assign(size_t(n), score);
  v.types.assign(size_t(n), kUnused);
  return v;
}

// _create_vocab_sentencepiece: the pieces of tokenizer.model with their scores and types
// (user-defined pieces count as normal, as SentencePieceProcessor reports them), then
// added_tokens.json and tokenizer_config.json's added_tokens_decoder, in ids up to vocab_size.
Vocab spm_model_vocab(const tok::Model& m, const fs::path& dir, int64_t vocab_size,
                      const json& config) {
  Vocab v = padded_vocab(vocab_size, -10000.0f);
  for (size_t id = 0; id < m.pieces.size() && int64_t(id) < vocab_size; ++id) {
    const int t = m.sp_types[id];
    v.tokens[id] = m.pieces[id];
    v.scores[id] = m.sp_scores[id];
    v.types[id] = t == kUnknown || t == kControl || t == kUnused || t == kByte ? t : kNormal;
  }
  const json added = read_json(dir / "added_tokens.json");
  if (added.is_object()) {
    for (const auto& [text, id] : added.items()) {
      const std::optional<int64_t> n = json_integer<int64_t>(id);
      if (!n || *n < 0 || *n >= vocab_size) continue;  // the converter skips ids out of range
      const size_t i = size_t(*n);
      v.tokens[i] = text;
      v.scores[i] = -1000.0f;
      v.types[i] = kUserDefined;
    }
  }
  const json decoder = get(config, "added_tokens_decoder");
  if (decoder.is_object()) {
    for (const auto& [key, data] : decoder.items()) {
      int64_t id = -1;
      try {
        id = std::stoll(key);
      } catch (const std::exception&) {
        fail((dir / "tokenizer_config.json").string(), ": added_tokens_decoder key \"", key,
             "\" is not a token id");
      }
      if (id < 0 || id >= vocab_size || !get(data, "content").is_string()) continue;
      std::string text = data["content"].get<std::string>();
      if (truthy(get(data, "special")) || looks_special(text)) {
        v.types[size_t(id)] = kControl;
      } else {
        text = replace_all(text, kSpaceMark, " ");  // pre-normalized, as llama.cpp expects
        v.types[size_t(id)] = kUserDefined;
      }
      v.scores[size_t(id)] = -1000.0f;
      v.tokens[size_t(id)] = text;
    }
  }
  return v;
}

// The ids transformers calls all_special_ids: BOS, EOS, UNK, PAD and the additional special
// tokens.
std::set<int32_t> special_ids(const Tokenizer& tk) {
  std::set<int32_t> ids;
  for (int32_t id : {tk.bos_id(), tk.eos_id(), tk.unk_id(), tk.pad_id()})
    if (id >= 0) ids.insert(id);
  for (const std::string& t : tk.additional_special_tokens())
    if (auto id = tk.find(t)) ids.insert(*id);
  return ids;
}

// Added tokens (tokenizer.json's, then tokenizer_config.json's) by id: transformers'
// get_added_vocab.
std::map<int32_t, const tok::AddedToken*> added_by_id(const tok::Model& m) {
  std::map<int32_t, const tok::AddedToken*> out;
  for (const tok::AddedToken& a : m.added) out.emplace(a.id, &a);
  return out;
}

// LlamaHfVocab: a SentencePiece-style tokenizer.json. Types: byte for "<0xNN>", control
// for the special ids, else normal; added tokens past the model's vocabulary follow.
// Scores: the converter writes -1000 for every token, and llama.cpp's SentencePiece
// tokenizer, which merges the adjacent pair whose result scores highest (leftmost on
// ties), then merges strictly left to right. lathe writes minus the rank of the first
// merge that makes each token instead (tokens no merge makes score below all of them),
// so that llama.cpp tokenizes text as the merge list does.
Vocab spm_json_vocab(const Tokenizer& tk, int64_t vocab_size) {
  const tok::Model& m = tk.model();
  const int64_t base = int64_t(m.pieces.size());
  const auto added = added_by_id(m);
  int64_t n = base;
  for (const auto& [id, a] : added) n = std::max<int64_t>(n, int64_t(id) + 1);
  Vocab v = padded_vocab(std::max(n, vocab_size), -1000.0f);
  const float unmerged = -float(m.merges.size() + 1);
  for (int64_t id = 0; id < base; ++id) v.scores[size_t(id)] = unmerged;
  for (auto it = m.merges.rbegin(); it != m.merges.rend(); ++it)
    v.scores[size_t(it->merged)] = -float(it->rank);
  const std::set<int32_t> specials = special_ids(tk);
  for (int64_t id = 0; id < base; ++id) {
    const std::string& t = m.pieces[size_t(id)];
    v.tokens[size_t(id)] = t;
    v.types[size_t(id)] = is_byte_piece(t)              ? kByte
                          : specials.count(int32_t(id)) ? kControl
                                                        : kNormal;
  }
  for (const auto& [id, a] : added) {
    if (id < base) continue;
    v.tokens[size_t(id)] = a->content;
    v.scores[size_t(id)] = -1000.0f;
    v.types[size_t(id)] = specials.count(id) ? kControl : kUserDefined;
  }
  return v;
}

// get_vocab_base: a byte-level tokenizer.json's tokens as written ("Ġthe"), added tokens as
// control (special, or looking special) or user-defined, "[PAD<i>]" where an id up to
// vocab_size has no token.
Vocab byte_level_vocab(const Tokenizer& tk, int64_t vocab_size) {
  const tok::Model& m = tk.model();
  Vocab v = padded_vocab(vocab_size, 0.0f);
  v.scores.clear();
  std::map<std::string, int32_t> added_text;
  for (const tok::AddedToken& a : m.added) added_text.emplace(a.content, a.id);
  const auto added = added_by_id(m);
  for (int64_t id = 0; id < vocab_size; ++id) {
    std::string t;
    if (auto it = added.find(int32_t(id)); it != added.end()) {
      t = it->second->content;
    } else if (id < int64_t(m.pieces.size())) {
      t = m.pieces[size_t(id)];
    } else {
      continue;
    }
    if (auto a = added_text.find(t); a != added_text.end()) {
      const auto da = added.find(a->second);
      const bool special = da != added.end() && da->second->special;
      if (special || looks_special(t)) {
        v.types[size_t(id)] = kControl;
      } else {
        t = replace_all(t, kSpaceMark, " ");
        v.types[size_t(id)] = kUserDefined;
      }
    } else {
      v.types[size_t(id)] = kNormal;
    }
    v.tokens[size_t(id)] = t;
  }
  return v;
}

// gguf-py's SpecialVocab: special token ids, add_*_token flags, merges and chat template
// from tokenizer.json, tokenizer_config.json and config.json.
struct SpecialVocab {
  std::vector<std::string> types = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
  InsertionOrdered<int64_t> ids;
  InsertionOrdered<bool> add;
  std::vector<std::string> merges;
  std::optional<std::string> chat_template;
  int64_t n_vocab = -1;  // ids at or above it are ignored; -1: no limit

  void set_id(const std::string& typ, const json& v, const std::string& origin) {
    if (!v.is_number_integer()) return;
    const int64_t id = require_json_integer<int64_t>(v, origin + ": the " + typ + " token id");
    LATHE_CHECK(id >= 0, origin, ": invalid id ", id, " for the ", typ, " token");
    if ((n_vocab < 0 || id < n_vocab) && !ids.count(typ)) ids[typ] = id;
  }

  void read_template(const json& proc, json& cfg, bool have_cfg, json& bos, json& cls, json& eos,
                     json& sep) {
    const json single = get(proc, "single").is_array() ? proc["single"] : json::array();
    const json pair = get(proc, "pair").is_array() ? proc["pair"] : json::array();
    auto special_of = [](const json& item) { return get(get(item, "SpecialToken"), "id"); };
    json first, last;
    if (single.size() > 1) {
      first = special_of(single.front());
      if (truthy(first)) {
        if (!have_cfg) {
          bos = first;
        } else if (first != bos && first != cls) {
          // A template that starts with a token the config does not name: it becomes the
          // BOS (and CLS) token where the config has none. (Not in gguf 0.19.0.)
          if (!truthy(bos)) cfg["bos_token"] = bos = first;
          if (!truthy(cls)) cfg["cls_token"] = cls = first;
        }
        add["bos"] = first == bos || first == cls;
      }
      last = special_of(single.back());
      if (truthy(last)) {
        if (!have_cfg) {
          eos = last;
        } else if (last != eos) {
          // A template that ends in another token than eos_token: that one becomes EOS and
          // the configured one EOT (or EOM).
          for (const char* extra : {"eot", "eom"}) {
            if (std::find(types.begin(), types.end(), extra) == types.end()) {
              types.push_back(extra);
              cfg[std::string(extra) + "_token"] = eos;
              break;
            }
          }
          cfg["eos_token"] = eos = last;
        }
        add["eos"] = last == eos;
      }
    }
    if (pair.empty()) return;
    size_t start = truthy(first) && special_of(pair.front()) == first ? 1 : 0;
    size_t stop = truthy(last) && special_of(pair.back()) == last ? pair.size() - 1 : pair.size();
    if (start >= stop) return;
    const json a = get(get(pair[start], "Sequence"), "id");
    const json b = get(get(pair[stop - 1], "Sequence"), "id");
    if (a != "A" || b != "B" || stop - start <= 2) return;
    ++start;
    --stop;
    bool add_sep = false;
    const json e1 = special_of(pair[start]);
    if (truthy(e1) && (e1 == sep || e1 == eos) && !truthy(last)) add_sep = true;
    if (stop - start == 2) {
      const json e2 = special_of(pair[start + 1]);
      if (truthy(e2) && (e2 == sep || e2 == eos)) add_sep = true;
    }
    add["sep"] = add_sep;
    if (add_sep && !truthy(sep) && have_cfg) cfg["sep_token"] = eos;
  }

  void load(const fs::path& dir, bool load_merges) {
    const json tokenizer = read_json(dir / "tokenizer.json");
    const std::string cfg_path = (dir / "tokenizer_config.json").string();
    json cfg = read_json(cfg_path);
    json added_tokens = json::array();
    if (!tokenizer.is_null()) {
      const json mj = get(get(tokenizer, "model"), "merges");
      if (load_merges && mj.is_array() && !mj.empty()) {
        for (const json& item : mj) {
          if (item.is_string()) {
            merges.push_back(item.get<std::string>());
          } else {
            LATHE_CHECK(
                item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_string(),
                (dir / "tokenizer.json").string(), ": unknown merges format ", item.dump());
            // A space inside a merge part is written as U+0120, as gguf-py does.
            merges.push_back(replace_all(item[0].get<std::string>(), " ", "\xC4\xA0") + " " +
                             replace_all(item[1].get<std::string>(), " ", "\xC4\xA0"));
          }
        }
      }
      if (get(tokenizer, "added_tokens").is_array()) added_tokens = tokenizer["added_tokens"];
      const bool have_cfg = truthy(cfg);
      json bos = get(cfg, "bos_token"), cls = get(cfg, "cls_token");
      json eos = get(cfg, "eos_token"), sep = get(cfg, "sep_token");
      if (!truthy(bos) && truthy(cls) && have_cfg) cfg["bos_token"] = bos = cls;
      if (!truthy(eos) && truthy(sep) && have_cfg) cfg["eos_token"] = eos = sep;
      const json post = get(tokenizer, "post_processor");
      if (truthy(post)) {
        const json procs = post.contains("processors") ? post["processors"] : json::array({post});
        for (const json& proc : procs) {
          const json type = get(proc, "type");
          if (type == "ByteLevel") {
            // No template: nothing is added, unless tokenizer_config.json says so below.
            // (Not in gguf 0.19.0, which writes no add_bos_token / add_eos_token here.)
            if (!add.count("bos")) add["bos"] = false;
            if (!add.count("eos")) add["eos"] = false;
          } else if (type == "RobertaProcessing") {
            add["bos"] = true;
            add["eos"] = true;
            add["sep"] = true;
            if (!truthy(cls) && have_cfg) cfg["cls_token"] = cls = bos;
            if (!truthy(sep) && have_cfg) cfg["sep_token"] = sep = eos;
          } else if (type == "TemplateProcessing") {
            read_template(proc, cfg, have_cfg, bos, cls, eos, sep);
          }
        }
      }
    }
    if (truthy(cfg)) {
      json alt;
      if (fs::exists(dir / "chat_template.jinja")) {
        std::ifstream f(dir / "chat_template.jinja", std::ios::binary);
        alt = std::string(std::istreambuf_iterator<char>(f), {});
      } else if (fs::exists(dir / "chat_template.json")) {
        alt = get(read_json(dir / "chat_template.json"), "chat_template");
      }
      const json tmpl = cfg.contains("chat_template") ? cfg["chat_template"] : alt;
      if (tmpl.is_string()) {
        chat_template = tmpl.get<std::string>();
      } else if (!tmpl.is_null()) {
        std::fprintf(stderr, "note: %s: chat_template is not one string; not written to the GGUF\n",
                     cfg_path.c_str());
      }
      for (const std::string& typ : types) {
        const json flag = get(cfg, ("add_" + typ + "_token").c_str());
        if (flag.is_boolean()) add[typ] = flag.get<bool>();
        const json entry = get(cfg, (typ + "_token").c_str());
        std::string content;
        if (entry.is_string()) {
          content = entry.get<std::string>();
        } else if (get(entry, "content").is_string()) {
          content = entry["content"].get<std::string>();
        } else {
          continue;
        }
        for (const json& a : added_tokens) {
          if (get(a, "content") == content) {
            set_id(typ, get(a, "id"), cfg_path);
            break;
          }
        }
      }
    }
    const json config = read_json(dir / "config.json");
    for (const std::string& typ : types)
      set_id(typ, get(config, (typ + "_token_id").c_str()), (dir / "config.json").string());
  }

  void write(GgufWriter& w) const {
    if (!merges.empty()) w.add_strings("tokenizer.ggml.merges", merges);
    static const std::map<std::string, std::string> id_keys = {
        {"bos", "bos_token_id"},       {"eos", "eos_token_id"},     {"unk", "unknown_token_id"},
        {"sep", "seperator_token_id"}, {"pad", "padding_token_id"}, {"mask", "mask_token_id"},
        {"eot", "eot_token_id"},       {"eom", "eom_token_id"}};  // cls: no GGUF key
    for (const auto& [typ, id] : ids)
      if (auto k = id_keys.find(typ); k != id_keys.end())
        w.add_u32("tokenizer.ggml." + k->second, uint32_t(id));
    for (const auto& [typ, value] : add)
      if (typ == "bos" || typ == "eos" || typ == "sep")
        w.add_bool("tokenizer.ggml.add_" + typ + "_token", value);
    if (chat_template) w.add_string("tokenizer.chat_template", *chat_template);
  }
};

}  // namespace

std::string add_gguf_vocab(GgufWriter& w, const std::string& folder, int64_t vocab_size) {
  const fs::path dir(folder);
  const json config = read_json(dir / "tokenizer_config.json");
  // LlamaModel.set_vocab writes this one first, when tokenizer_config.json sets it.
  if (get(config, "add_prefix_space").is_boolean())
    w.add_bool("tokenizer.ggml.add_space_prefix", config["add_prefix_space"].get<bool>());

  const fs::path model_file = dir / "tokenizer.model";
  bool sentencepiece_model = false;
  if (fs::exists(model_file)) {
    std::ifstream f(model_file, std::ios::binary);
    sentencepiece_model = f.get() == 0x0A;  // a ModelProto starts with field 1, bytes
  }
  Vocab v;
  SpecialVocab special;
  std::string model, pre, what;
  if (sentencepiece_model) {
    // As the converter, a SentencePiece tokenizer.model wins over tokenizer.json.
    const tok::Model m = tok::load_tokenizer_model(model_file.string());
    v = spm_model_vocab(m, dir, vocab_size, config);
    model = "llama", pre = "default";
    special.n_vocab = int64_t(v.tokens.size());
    what = "SentencePiece tokenizer.model";
  } else {
    LATHE_CHECK(fs::exists(dir / "tokenizer.json"), folder, ": no tokenizer.json",
                fs::exists(model_file)
                    ? " (its tokenizer.model holds tiktoken ranks, which carry no merge list for "
                      "GGUF; add the model's tokenizer.json)"
                    : " or tokenizer.model: GGUF needs the model's tokenizer");
    const auto tk = Tokenizer::load(folder);
    const tok::Model& m = tk->model();
    if (m.kind == tok::Kind::kSentencePiece) {
      v = spm_json_vocab(*tk, vocab_size);
      model = "llama", pre = "default";
      special.n_vocab = int64_t(v.tokens.size());
      what = "SentencePiece-style tokenizer.json";
    } else {
      LATHE_CHECK(m.regex == tok::SplitRegex::kGpt2 ||
                      (m.regex == tok::SplitRegex::kLlama3 && m.max_digits == 3),
                  m.source, ": this byte-level pre-tokenizer has no llama.cpp name (GGUF export ",
                  "knows Llama 3's, \"llama-bpe\", and GPT-2's, \"gpt-2\")");
      v = byte_level_vocab(*tk, vocab_size);
      model = "gpt2";
      // The converter names the pre-tokenizer by a hash of the ids its tokenizer gives a
      // fixed text. For Llama 3's split pattern that hash tells Meta's current
      // tokenizer.json, whose post-processor adds <|begin_of_text|> ("llama-bpe"), from the
      // April 2024 one, which adds nothing and hashes as "smaug-bpe" (llama.cpp splits text
      // the same way for both).
      pre = m.regex == tok::SplitRegex::kGpt2 ? "gpt-2"
            : !m.template_bos.empty()         ? "llama-bpe"
                                              : "smaug-bpe";
      what = "byte-level tokenizer.json";
    }
  }
  LATHE_CHECK(int64_t(v.tokens.size()) == vocab_size, folder, ": the tokenizer has ",
              v.tokens.size(), " tokens but config.json's vocab_size is ", vocab_size,
              " (llama.cpp needs one token per row of the embedding)");
  special.load(dir, model == "gpt2");
  w.add_string("tokenizer.ggml.model", model);
  w.add_string("tokenizer.ggml.pre", pre);
  w.add_strings("tokenizer.ggml.tokens", v.tokens);
  if (!v.scores.empty()) w.add_f32s("tokenizer.ggml.scores", v.scores);
  w.add_i32s("tokenizer.ggml.token_type", v.types);
  special.write(w);
  return str_cat(model, " (", what, "), ", v.tokens.size(), " tokens",
                 special.merges.empty() ? "" : str_cat(", ", special.merges.size(), " merges"));
}

}  // namespace lathe
