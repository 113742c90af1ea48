// tokenizer.json (Hugging Face `tokenizers`) <-> Model. Only the BPE shapes that Llama
// families use are accepted; anything else is an error naming the section, so a model
// never trains on silently different token ids.
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "core/json_number.h"
#include "tokenizer/model.h"

namespace lathe::tok {

using nlohmann::json;

namespace {

constexpr const char* kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

// The split patterns lathe implements by hand (text.h), as tokenizer.json spells them.
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3OneDigitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The parts of a (possibly nested) Sequence node, in order.
void flatten(const json& node, const char* list_key, std::vector<const json*>& out) {
  if (node.is_null()) return;
  if (node.value("type", "") == "Sequence" && node.contains(list_key)) {
    for (const json& part : node[list_key]) flatten(part, list_key, out);
  } else {
    out.push_back(&node);
  }
}

std::string string_or_empty(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }

std::string pattern_of(const json& node) {
  const json& p = node.value("pattern", json::object());
  if (p.contains("String")) return p["String"].get<std::string>();
  if (p.contains("Regex")) return p["Regex"].get<std::string>();
  return "";
}

void read_normalizer(const json& j, const std::string& path, Model& m, bool& replaces_space) {
  std::vector<const json*> parts;
  flatten(j, "normalizers", parts);
  bool strip = false, collapse = false;
  m.prepend = Prepend::kNever;
  for (const json* n : parts) {
    const std::string type = n->value("type", "");
    if (type == "Prepend" && n->value("prepend", "") == kSpaceMark) {
      m.prepend = Prepend::kAlways;
    } else if (type == "Replace" && pattern_of(*n) == " " &&
               n->value("content", "") == kSpaceMark) {
      replaces_space = true;
    } else if (type == "Strip" && n->value("strip_left", false) && n->value("strip_right", false)) {
      strip = true;  // with the collapse below: SentencePiece's remove_extra_whitespaces
    } else if (type == "Replace" && pattern_of(*n) == " {2,}" && n->value("content", "") == " ") {
      collapse = true;
    } else {
      fail(path, ": normalizer ", n->dump(), " is not supported (lathe implements the Llama ",
           "normalizers: Prepend \"\u2581\", Replace \" \" -> \"\u2581\")");
    }
  }
  LATHE_CHECK(strip == collapse, path,
              ": normalizer Strip and Replace \" {2,}\" must come together (SentencePiece's ",
              "remove_extra_whitespaces)");
  m.remove_extra_whitespaces = strip;
}

void read_pre_tokenizer(const json& j, const std::string& path, Model& m, bool& replaces_space) {
  std::vector<const json*> parts;
  flatten(j, "pretokenizers", parts);
  for (const json* p : parts) {
    const std::string type = p->value("type", "");
    if (type == "Metaspace") {
      LATHE_CHECK(p->value("replacement", "") == kSpaceMark, path,
                  ": Metaspace replacement must be \"\u2581\"");
      std::string scheme = p->value("prepend_scheme", "");
      if (scheme.empty()) scheme = p->value("add_prefix_space", true) ? "always" : "never";
      LATHE_CHECK(scheme == "always" || scheme == "first" || scheme == "never", path,
                  ": Metaspace prepend_scheme \"", scheme, "\" is unknown");
      m.prepend = scheme == "always"  ? Prepend::kAlways
                  : scheme == "first" ? Prepend::kFirst
                                      : Prepend::kNever;
      m.prepend_unless_leading_space = true;
      m.metaspace_split = p->value("split", true);  // absent in old files, which always split
      replaces_space = true;
    } else if (type == "Split") {
      const std::string pattern = pattern_of(*p);
      if (pattern == kLlama3Pattern || pattern == kLlama3OneDigitPattern) {
        m.regex = SplitRegex::kLlama3;
        m.max_digits = pattern == kLlama3Pattern ? 3 : 1;
      } else if (pattern == kGpt2Pattern) {
        m.regex = SplitRegex::kGpt2;
      } else {
        fail(path, ": pre_tokenizer Split pattern ", json(pattern).dump(),
             " is not one lathe implements (the Llama 3 and GPT-2 patterns)");
      }
      LATHE_CHECK(p->value("behavior", "Isolated") == "Isolated" && !p->value("invert", false),
                  path, ": pre_tokenizer Split must have behavior Isolated, invert false");
      m.kind = Kind::kByteLevel;
    } else if (type == "ByteLevel") {
      m.kind = Kind::kByteLevel;
      m.add_prefix_space = p->value("add_prefix_space", false);
      // use_regex = GPT-2's pattern built into ByteLevel; Llama 3 turns it off after Split.
      if (p->value("use_regex", true)) m.regex = SplitRegex::kGpt2;
    } else {
      fail(path, ": pre_tokenizer ", p->dump(), " is not supported (lathe implements ",
           "Metaspace, and Split + ByteLevel as Llama 3 uses them)");
    }
  }
}

void read_post_processor(const json& j, Model& m) {
  m.has_template = true;
  std::vector<const json*> parts;
  flatten(j, "processors", parts);
  for (const json* p : parts) {
    if (p->value("type", "") != "TemplateProcessing" || !p->contains("single")) continue;
    const json& single = (*p)["single"];
    if (single.empty()) continue;
    // {"SpecialToken": {"id": "<s>", ...}}; anything else (a Sequence item, or an entry
    // missing "id") names no token.
    auto special = [](const json& item) -> std::string {
      if (!item.is_object()) return "";
      const auto token = item.find("SpecialToken");
      if (token == item.end() || !token->is_object()) return "";
      const auto id = token->find("id");
      return id == token->end() ? "" : string_or_empty(*id);
    };
    m.template_bos = special(single.front());
    if (single.size() > 1) m.template_eos = special(single.back());
  }
}

bool decoder_strips_space(const json& j) {
  std::vector<const json*> parts;
  flatten(j, "decoders", parts);
  for (const json* d : parts) {
    const std::string type = d->value("type", "");
    if (type == "Strip" && d->value("content", "") == " " && d->value("start", 0) >= 1) return true;
    if (type == "Metaspace") {
      return d->value("prepend_scheme", d->value("add_prefix_space", true) ? "always" : "never") !=
             "never";
    }
  }
  return false;
}

std::string dump_or_empty(const json& j) { return j.is_null() ? "" : j.dump(); }

}  // namespace

Model load_hf_tokenizer_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  LATHE_CHECK(f, path, ": cannot open");
  std::ostringstream text;
  text << f.rdbuf();
  return parse_hf_tokenizer_json(text.str(), path);
}

Model parse_hf_tokenizer_json(std::string_view text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  Model m;
  m.source = path;
  try {
    LATHE_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), path,
                ": no \"model\" object; not a Hugging Face tokenizers file");
    const json& mj = j["model"];
    const std::string type = mj.value("type", "BPE");
    LATHE_CHECK(type == "BPE", path, ": model.type \"", type,
                "\" is not supported; lathe reads BPE tokenizers (Llama 2, Llama 3)");
    LATHE_CHECK(mj.value("dropout", json()).is_null(), path,
                ": model.dropout is set; lathe does not sample BPE dropout");
    LATHE_CHECK(string_or_empty(mj.value("continuing_subword_prefix", json())).empty() &&
                    string_or_empty(mj.value("end_of_word_suffix", json())).empty(),
                path, ": continuing_subword_prefix / end_of_word_suffix are not supported");

    bool replaces_space = false;
    const json null_json;
    const json& normalizer = j.contains("normalizer") ? j["normalizer"] : null_json;
    const json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : null_json;
    read_pre_tokenizer(pre, path, m, replaces_space);
    if (m.kind == Kind::kByteLevel) {
      LATHE_CHECK(normalizer.is_null(), path, ": byte-level tokenizers with a normalizer (",
                  normalizer.dump(), ") are not supported");
    } else if (!normalizer.is_null()) {
      read_normalizer(normalizer, path, m, replaces_space);
    }
    LATHE_CHECK(m.kind == Kind::kByteLevel || replaces_space, path,
                ": neither a ByteLevel pre-tokenizer nor a \" \" -> \"\u2581\" normalizer or ",
                "Metaspace; lathe cannot tell how this tokenizer treats spaces");
    const json& post = j.contains("post_processor") ? j["post_processor"] : null_json;
    read_post_processor(post, m);
    const json& decoder = j.contains("decoder") ? j["decoder"] : null_json;
    m.decode_strip_space = m.kind == Kind::kSentencePiece && decoder_strips_space(decoder);
    m.normalizer_json = dump_or_empty(normalizer);
    m.pre_tokenizer_json = dump_or_empty(pre);
    m.post_processor_json = dump_or_empty(post);
    m.decoder_json = dump_or_empty(decoder);

    m.byte_fallback = mj.value("byte_fallback", false);
    m.fuse_unk = mj.value("fuse_unk", false);
    // Llama 3 was defined by tiktoken, which looks a whole pre-token up before merging;
    // merges alone differ on some words (" Việt" -> 11655 26298 83 instead of 101798).
    // tokenizers 0.19.1 added ignore_merges for this and the Hub file now sets it. Files
    // written before the key existed (the April 2024 Meta-Llama-3 tokenizer.json) lack
    // it, so for the Llama 3 pattern an absent key means true: the ids the model was
    // trained with (tiktoken, Meta's tests, llama.cpp). A present key is obeyed.
    m.ignore_merges =
        mj.contains("ignore_merges")
            ? mj["ignore_merges"].get<bool>()
            : m.kind == Kind::kByteLevel && m.regex == SplitRegex::kLlama3 && m.max_digits == 3;
    m.unk_token = string_or_empty(mj.value("unk_token", json()));

    // Vocabulary.
    const json& vocab = mj.value("vocab", json::object());
    LATHE_CHECK(vocab.is_object() && !vocab.empty(), path, ": model.vocab is missing or empty");
    m.pieces.assign(vocab.size(), std::string());
    std::vector<uint8_t> seen(vocab.size(), 0);
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const int64_t id = require_json_integer<int64_t>(
          it.value(), str_cat(path, ": the vocab id of ", json(it.key()).dump()));
      LATHE_CHECK(id >= 0 && id < int64_t(vocab.size()), path, ": vocab id ", id, " of ",
                  json(it.key()).dump(), " is outside 0..", vocab.size() - 1,
                  " (ids must be dense)");
      LATHE_CHECK(!seen[size_t(id)], path, ": vocab id ", id, " appears twice");
      seen[size_t(id)] = 1;
      m.pieces[size_t(id)] = it.key();
    }
    const ByteLevelMap& bl = byte_level_map();
    m.texts.resize(m.pieces.size());
    for (size_t id = 0; id < m.pieces.size(); ++id) {
      if (m.kind == Kind::kSentencePiece) {
        m.texts[id] = m.pieces[id];
      } else if (!bl.decode(m.pieces[id], m.texts[id])) {
        fail(path, ": vocab token ", json(m.pieces[id]).dump(), " (id ", id,
             ") is not in the byte-level alphabet");
      }
    }
    m.ids.build(m.texts);

    // Merges: "a b" strings (older files) or ["a", "b"] pairs (tokenizers >= 0.20).
    const json& merges = mj.value("merges", json::array());
    m.merges.reserve(merges.size());
    m.pairs.reserve(merges.size());
    std::string a, b, raw_a, raw_b;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const json& item = merges[rank];
      if (item.is_string()) {
        const std::string& s = item.get_ref<const std::string&>();
        const size_t sp = s.find(' ');
        LATHE_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, path,
                    ": merge ", rank, " ", json(s).dump(), " is not \"left right\"");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else {
        LATHE_CHECK(item.is_array() && item.size() == 2, path, ": merge ", rank, " ", item.dump(),
                    " is not a pair");
        a = item[0].get<std::string>();
        b = item[1].get<std::string>();
      }
      if (m.kind == Kind::kByteLevel) {
        LATHE_CHECK(bl.decode(a, raw_a) && bl.decode(b, raw_b), path, ": merge ", rank,
                    " has a token outside the byte-level alphabet");
      } else {
        raw_a = a;
        raw_b = b;
      }
      const int32_t left = m.ids.find(raw_a), right = m.ids.find(raw_b);
      const int32_t merged = m.ids.find(raw_a + raw_b);
      LATHE_CHECK(left >= 0 && right >= 0 && merged >= 0, path, ": merge ", rank, " (",
                  json(a).dump(), ", ", json(b).dump(), "): ",
                  left < 0    ? a
                  : right < 0 ? b
                              : a + b,
                  " is not in the vocabulary");
      m.merges.push_back({left, right, merged, int32_t(rank)});
      m.pairs.insert(left, right, {int32_t(rank), merged});
    }

    if (j.contains("added_tokens")) {
      for (const json& t : j["added_tokens"]) {
        AddedToken a;
        a.id = require_json_integer<int32_t>(t.at("id"), str_cat(path, ": added_tokens id"));
        a.content = t.at("content").get<std::string>();
        a.special = t.value("special", false);
        a.lstrip = t.value("lstrip", false);
        a.rstrip = t.value("rstrip", false);
        a.single_word = t.value("single_word", false);
        a.normalized = t.value("normalized", !a.special);
        LATHE_CHECK(a.id >= 0 && !a.content.empty(), path, ": added token ", t.dump(),
                    " needs an id >= 0 and non-empty content");
        m.added.push_back(std::move(a));
      }
    }
  } catch (const json::exception& e) {
    fail(path, ": unexpected structure: ", e.what());
  }
  return m;
}

namespace {

std::string quoted(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

// The section text, re-indented to sit at depth 1 of the file.
std::string section(const std::string& text) {
  if (text.empty()) return "null";
  std::string out = json::parse(text).dump(2, ' ', false, json::error_handler_t::replace);
  std::string indented;
  for (char c : out) {
    indented += c;
    if (c == '\n') indented += "  ";
  }
  return indented;
}

}  // namespace

std::string hf_tokenizer_json_text(const Model& m, const std::string& post_processor_json) {
  std::ostringstream o;
  o << "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n";
  o << "  \"added_tokens\": [";
  for (size_t i = 0; i < m.added.size(); ++i) {
    const AddedToken& a = m.added[i];
    o << (i ? ",\n" : "\n") << "    {\n      \"id\": " << a.id
      << ",\n      \"content\": " << quoted(a.content)
      << ",\n      \"single_word\": " << (a.single_word ? "true" : "false")
      << ",\n      \"lstrip\": " << (a.lstrip ? "true" : "false")
      << ",\n      \"rstrip\": " << (a.rstrip ? "true" : "false")
      << ",\n      \"normalized\": " << (a.normalized ? "true" : "false")
      << ",\n      \"special\": " << (a.special ? "true" : "false") << "\n    }";
  }
  o << (m.added.empty() ? "],\n" : "\n  ],\n");
  o << "  \"normalizer\": " << section(m.normalizer_json) << ",\n";
  o << "  \"pre_tokenizer\": " << section(m.pre_tokenizer_json) << ",\n";
  o << "  \"post_processor\": " << section(post_processor_json) << ",\n";
  o << "  \"decoder\": " << section(m.decoder_json) << ",\n";
  o << "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": "
    << (m.unk_token.empty() ? "null" : quoted(m.unk_token))
    << ",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
    << "    \"fuse_unk\": " << (m.fuse_unk ? "true" : "false")
    << ",\n    \"byte_fallback\": " << (m.byte_fallback ? "true" : "false")
    << ",\n    \"ignore_merges\": " << (m.ignore_merges ? "true" : "false")
    << ",\n    \"vocab\": {";
  for (size_t id = 0; id < m.pieces.size(); ++id) {
    o << (id ? ",\n" : "\n") << "      " << quoted(m.pieces[id]) << ": " << id;
  }
  o << "\n    },\n    \"merges\": [";
  // "a b" strings are read by every tokenizers version; pairs are needed only when a
  // token itself contains a space.
  bool as_pairs = false;
  for (const Merge& mg : m.merges) {
    if (m.pieces[size_t(mg.left)].find(' ') != std::string::npos ||
        m.pieces[size_t(mg.right)].find(' ') != std::string::npos) {
      as_pairs = true;
      break;
    }
  }
  for (size_t i = 0; i < m.merges.size(); ++i) {
    const std::string& a = m.pieces[size_t(m.merges[i].left)];
    const std::string& b = m.pieces[size_t(m.merges[i].right)];
    o << (i ? ",\n" : "\n") << "      ";
    if (as_pairs) {
      o << "[\n        " << quoted(a) << ",\n        " << quoted(b) << "\n      ]";
    } else {
      o << quoted(a + " " + b);
    }
  }
  o << (m.merges.empty() ? "]\n" : "\n    ]\n") << "  }\n}\n";
  return o.str();
}

}  // namespace lathe::tok
