// tokenizer.model -> Model: a SentencePiece ModelProto (Llama 2), read with a minimal
// protobuf wire-format reader, or tiktoken "base64 rank" lines (Llama 3).
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/model.h"

namespace lathe::tok {

namespace {

constexpr const char* kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁"

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  LATHE_CHECK(f, path, ": cannot open");
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Protobuf wire format: (field << 3 | wire type) varint keys, then a varint, a fixed
// 32/64-bit value or a length-delimited byte string.
class ProtoReader {
 public:
  ProtoReader(std::string_view data, const std::string& path) : d_(data), path_(path) {}
  bool done() const { return pos_ >= d_.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      LATHE_CHECK(pos_ < d_.size(), path_, ": truncated protobuf (varint at byte ", pos_, ")");
      const uint8_t b = uint8_t(d_[pos_++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(path_, ": malformed protobuf varint at byte ", pos_);
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    LATHE_CHECK(n <= d_.size() - pos_, path_, ": truncated protobuf (", n, "-byte field at byte ",
                pos_, ")");
    std::string_view s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  float fixed32_float() {
    LATHE_CHECK(d_.size() - pos_ >= 4, path_, ": truncated protobuf (float at byte ", pos_, ")");
    float f;
    std::memcpy(&f, d_.data() + pos_, 4);  // little-endian, as x86 and ARM are
    pos_ += 4;
    return f;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        advance(8);
        break;
      case 2:
        bytes();
        break;
      case 5:
        advance(4);
        break;
      default:
        fail(path_, ": unsupported protobuf wire type ", wire, " at byte ", pos_);
    }
  }

 private:
  void advance(size_t n) {
    LATHE_CHECK(d_.size() - pos_ >= n, path_, ": truncated protobuf at byte ", pos_);
    pos_ += n;
  }
  std::string_view d_;
  const std::string& path_;
  size_t pos_ = 0;
};

// SentencePiece::Type
enum PieceType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

struct SpPiece {
  std::string piece;
  float score = 0;
  int type = kNormal;
};

struct SpSpec {
  int model_type = 1;  // UNIGRAM is the proto default
  bool byte_fallback = false;
  int64_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string normalizer_name;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
  bool has_charsmap = false;
};

void parse_model_proto(const std::string& data, const std::string& path,
                       std::vector<SpPiece>& pieces, SpSpec& spec) {
  ProtoReader r(data, path);
  while (!r.done()) {
    const uint64_t key = r.varint();
    const uint32_t field = uint32_t(key >> 3), wire = uint32_t(key & 7);
    if (field == 1 && wire == 2) {  // repeated SentencePiece pieces
      ProtoReader p(r.bytes(), path);
      SpPiece sp;
      while (!p.done()) {
        const uint64_t k = p.varint();
        if (k == (1 << 3 | 2)) {
          sp.piece = std::string(p.bytes());
        } else if (k == (2 << 3 | 5)) {
          sp.score = p.fixed32_float();
        } else if (k == (3 << 3 | 0)) {
          sp.type = int(p.varint());
        } else {
          p.skip(uint32_t(k & 7));
        }
      }
      pieces.push_back(std::move(sp));
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      ProtoReader t(r.bytes(), path);
      while (!t.done()) {
        const uint64_t k = t.varint();
        const uint32_t f = uint32_t(k >> 3);
        if ((k & 7) != 0) {
          t.skip(uint32_t(k & 7));
          continue;
        }
        const int64_t v = int64_t(t.varint());  // int32 -1 arrives as a 64-bit varint
        if (f == 3) spec.model_type = int(v);
        if (f == 35) spec.byte_fallback = v != 0;
        if (f == 40) spec.unk_id = int32_t(v);
        if (f == 41) spec.bos_id = int32_t(v);
        if (f == 42) spec.eos_id = int32_t(v);
        if (f == 43) spec.pad_id = int32_t(v);
      }
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      ProtoReader n(r.bytes(), path);
      while (!n.done()) {
        const uint64_t k = n.varint();
        const uint32_t f = uint32_t(k >> 3);
        if (f == 1 && (k & 7) == 2) {
          spec.normalizer_name = std::string(n.bytes());
        } else if (f == 2 && (k & 7) == 2) {
          spec.has_charsmap = !n.bytes().empty();
        } else if ((k & 7) == 0 && (f == 3 || f == 4 || f == 5)) {
          const bool v = n.varint() != 0;
          if (f == 3) spec.add_dummy_prefix = v;
          if (f == 4) spec.remove_extra_whitespaces = v;
          if (f == 5) spec.escape_whitespaces = v;
        } else {
          n.skip(uint32_t(k & 7));
        }
      }
    } else {
      r.skip(wire);
    }
  }
}

std::string piece_or_empty(const std::vector<SpPiece>& pieces, int64_t id) {
  return id >= 0 && id < int64_t(pieces.size()) ? pieces[size_t(id)].piece : "";
}

Model load_sentencepiece(const std::string& data, const std::string& path) {
  std::vector<SpPiece> pieces;
  SpSpec spec;
  parse_model_proto(data, path, pieces, spec);
  LATHE_CHECK(!pieces.empty(), path, ": no pieces; not a SentencePiece model");
  LATHE_CHECK(spec.model_type == 2, path, ": SentencePiece model_type ", spec.model_type,
              " is not BPE (2); lathe implements SentencePiece BPE (Llama 2), not Unigram");
  LATHE_CHECK(
      !spec.has_charsmap && (spec.normalizer_name.empty() || spec.normalizer_name == "identity"),
      path, ": normalization rule \"", spec.normalizer_name,
      "\" is not supported (Llama 2 uses \"identity\")");
  LATHE_CHECK(spec.escape_whitespaces, path, ": escape_whitespaces=false is not supported");

  Model m;
  m.source = path;
  m.kind = Kind::kSentencePiece;
  m.prepend = spec.add_dummy_prefix ? Prepend::kAlways : Prepend::kNever;
  m.decode_strip_space = spec.add_dummy_prefix;
  m.remove_extra_whitespaces = spec.remove_extra_whitespaces;
  m.byte_fallback = spec.byte_fallback;
  m.fuse_unk = true;
  m.unk_token = piece_or_empty(pieces, spec.unk_id);
  m.bos_token = piece_or_empty(pieces, spec.bos_id);
  m.eos_token = piece_or_empty(pieces, spec.eos_id);
  m.pad_token = piece_or_empty(pieces, spec.pad_id);
  m.pieces.reserve(pieces.size());
  for (const SpPiece& p : pieces) {
    m.pieces.push_back(p.piece);
    m.sp_scores.push_back(p.score);
    m.sp_types.push_back(uint8_t(p.type));
  }
  m.texts = m.pieces;
  m.ids.build(m.texts);

  // sentencepiece merges two symbols when their concatenation is a normal, user-defined
  // or unused piece, highest score first. As a pair table: every split of such a piece
  // into two pieces of that set, ranked by the piece's score.
  auto mergeable = [&](int32_t id) {
    const int t = pieces[size_t(id)].type;
    return t == kNormal || t == kUserDefined || t == kUnused;
  };
  std::vector<Merge> merges;
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& s = pieces[id].piece;
    if (!mergeable(int32_t(id))) continue;
    for (size_t cut = utf8_len(uint8_t(s[0])); cut < s.size(); cut += utf8_len(uint8_t(s[cut]))) {
      const int32_t left = m.ids.find(std::string_view(s).substr(0, cut));
      const int32_t right = m.ids.find(std::string_view(s).substr(cut));
      if (left >= 0 && right >= 0 && mergeable(left) && mergeable(right)) {
        merges.push_back({left, right, int32_t(id), 0});
      }
    }
  }
  // Equal scores share a rank, so the leftmost pair wins among them, as in sentencepiece.
  std::stable_sort(merges.begin(), merges.end(), [&](const Merge& a, const Merge& b) {
    return pieces[size_t(a.merged)].score > pieces[size_t(b.merged)].score;
  });
  int32_t rank = -1;
  float last = 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    const float score = pieces[size_t(merges[i].merged)].score;
    if (i == 0 || score != last) ++rank;
    last = score;
    merges[i].rank = rank;
  }
  m.pairs.reserve(merges.size());
  for (const Merge& mg : merges) m.pairs.insert(mg.left, mg.right, {mg.rank, mg.merged});
  m.merges = std::move(merges);

  // Control and unknown pieces are matched literally in text, as HF's LlamaTokenizer
  // declares them; user-defined pieces too, as non-special added tokens.
  for (size_t id = 0; id < pieces.size(); ++id) {
    const int t = pieces[id].type;
    if (t == kControl || t == kUnknown || t == kUserDefined) {
      AddedToken a;
      a.content = pieces[id].piece;
      a.id = int32_t(id);
      a.special = t != kUserDefined;
      m.added.push_back(a);
    }
  }

  // The tokenizer.json sections HF's converter writes for such a model.
  nlohmann::json norm = nlohmann::json::array();
  if (spec.remove_extra_whitespaces) {
    norm.push_back({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}});
    norm.push_back({{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}});
  }
  if (spec.add_dummy_prefix) norm.push_back({{"type", "Prepend"}, {"prepend", kSpaceMark}});
  norm.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpaceMark}});
  m.normalizer_json = nlohmann::json{{"type", "Sequence"}, {"normalizers", norm}}.dump();
  nlohmann::json dec = nlohmann::json::array();
  dec.push_back({{"type", "Replace"}, {"pattern", {{"String", kSpaceMark}}}, {"content", " "}});
  if (spec.byte_fallback) dec.push_back({{"type", "ByteFallback"}});
  dec.push_back({{"type", "Fuse"}});
  if (spec.add_dummy_prefix) {
    dec.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  }
  m.decoder_json = nlohmann::json{{"type", "Sequence"}, {"decoders", dec}}.dump();
  return m;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool base64_decode(std::string_view s, std::string& out) {
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const int v = base64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xFF);
    }
  }
  return true;
}

Model load_tiktoken(const std::string& data, const std::string& path) {
  Model m;
  m.source = path;
  m.kind = Kind::kByteLevel;
  m.regex = SplitRegex::kLlama3;
  m.max_digits = 3;
  m.ignore_merges = true;  // tiktoken looks a whole pre-token up before merging
  m.decode_strip_space = false;
  std::string bytes;
  size_t line_no = 0;
  // Ranks are dense, one per line, so none can reach the line count: a larger one is
  // corrupt, and sizing the table by it would allocate what the file claims.
  const size_t lines = size_t(std::count(data.begin(), data.end(), '\n')) + 1;
  for (size_t pos = 0; pos < data.size();) {
    size_t eol = data.find('\n', pos);
    if (eol == std::string::npos) eol = data.size();
    std::string_view line(data.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    LATHE_CHECK(
        sp != std::string_view::npos && base64_decode(line.substr(0, sp), bytes) && !bytes.empty(),
        path, ":", line_no, ": expected \"<base64 token> <rank>\"");
    int64_t rank = 0;
    for (char c : line.substr(sp + 1)) {
      LATHE_CHECK(c >= '0' && c <= '9' && rank < (int64_t(1) << 30), path, ":", line_no,
                  ": rank is not a number");
      rank = rank * 10 + (c - '0');
    }
    LATHE_CHECK(size_t(rank) < lines, path, ":", line_no, ": rank ", rank, " in a file of ", lines,
                " lines (ranks must be dense)");
    if (size_t(rank) >= m.texts.size()) m.texts.resize(size_t(rank) + 1);
    LATHE_CHECK(m.texts[size_t(rank)].empty(), path, ":", line_no, ": rank ", rank, " repeats");
    m.texts[size_t(rank)] = bytes;
  }
  LATHE_CHECK(!m.texts.empty(), path, ": empty tiktoken file");
  const ByteLevelMap& bl = byte_level_map();
  m.pieces.resize(m.texts.size());
  for (size_t id = 0; id < m.texts.size(); ++id) {
    LATHE_CHECK(!m.texts[id].empty(), path, ": rank ", id, " is missing (ranks must be dense)");
    m.pieces[id] = bl.encode(m.texts[id]);
  }
  m.ids.build(m.texts);
  // tiktoken merges the adjacent pair whose concatenation has the lowest rank. As a pair
  // table: every split of each token into two tokens, all at the token's own rank.
  for (size_t id = 0; id < m.texts.size(); ++id) {
    const std::string_view s = m.texts[id];
    for (size_t cut = 1; cut < s.size(); ++cut) {
      const int32_t left = m.ids.find(s.substr(0, cut)), right = m.ids.find(s.substr(cut));
      if (left >= 0 && right >= 0) m.merges.push_back({left, right, int32_t(id), int32_t(id)});
    }
  }
  m.pairs.reserve(m.merges.size());
  for (const Merge& mg : m.merges) m.pairs.insert(mg.left, mg.right, {mg.rank, mg.merged});

  const int32_t base = int32_t(m.texts.size());
  const std::vector<std::string> specials = llama3_default_special_tokens();
  for (size_t i = 0; i < specials.size(); ++i) {
    m.added.push_back(AddedToken{specials[i], base + int32_t(i)});
  }
  m.bos_token = specials[0];
  m.eos_token = specials[1];
  using nlohmann::json;
  m.pre_tokenizer_json = json{
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"},
         {"add_prefix_space", false},
         {"trim_offsets", true},
         {"use_regex",
          false}}}}}.dump();
  m.decoder_json = json{
      {"type", "ByteLevel"},
      {"add_prefix_space", true},
      {"trim_offsets", true},
      {"use_regex",
       true}}.dump();
  return m;
}

}  // namespace

std::vector<std::string> llama3_default_special_tokens() {
  // meta-llama/llama-models models/llama3/tokenizer.py: 256 specials after the ranks.
  std::vector<std::string> t = {"<|begin_of_text|>",
                                "<|end_of_text|>",
                                "<|reserved_special_token_0|>",
                                "<|reserved_special_token_1|>",
                                "<|finetune_right_pad_id|>",
                                "<|step_id|>",
                                "<|start_header_id|>",
                                "<|end_header_id|>",
                                "<|eom_id|>",
                                "<|eot_id|>",
                                "<|python_tag|>",
                                "<|image|>"};
  for (int i = 2; t.size() < 256; ++i)
    t.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
  return t;
}

Model load_tokenizer_model(const std::string& path) {
  return parse_tokenizer_model(read_all(path), path);
}

Model parse_tokenizer_model(const std::string& data, const std::string& path) {
  LATHE_CHECK(!data.empty(), path, ": empty file");
  // A ModelProto starts with field 1 (pieces), length-delimited: byte 0x0A. tiktoken
  // files start with base64 text.
  if (uint8_t(data[0]) == 0x0A) return load_sentencepiece(data, path);
  LATHE_CHECK(base64_value(data[0]) >= 0, path,
              ": neither a SentencePiece model (protobuf) nor tiktoken ranks (base64 lines)");
  return load_tiktoken(data, path);
}

}  // namespace lathe::tok
