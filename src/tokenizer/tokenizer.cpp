// Encoding and decoding. Loading, configuration and saving are in tokenizer_io.cpp.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/error.h"

namespace lathe {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁"

bool ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool starts_with_mark(std::string_view s, size_t i) { return s.compare(i, 3, kSpaceMark) == 0; }

}  // namespace

// Per-call buffers: one encode allocates these once, however many words it has.
struct Tokenizer::Scratch {
  std::string norm;
  std::string prefixed;
  tok::SplitScratch split;
  std::vector<uint32_t> ends;
  tok::MergeScratch merge;
};

Tokenizer::Tokenizer(tok::Model model) : m_(std::move(model)) {
  byte_ids_.fill(-1);
  ascii_ids_.fill(-1);
  const std::string& src = m_.source;
  if (!m_.unk_token.empty()) {
    unk_id_ = m_.ids.find(m_.unk_token);
    LATHE_CHECK(unk_id_ >= 0, src, ": unk_token \"", m_.unk_token, "\" is not in the vocabulary");
  }
  if (m_.kind == tok::Kind::kByteLevel) {
    for (int b = 0; b < 256; ++b) {
      byte_ids_[size_t(b)] = m_.ids.find(std::string(1, char(b)));
      LATHE_CHECK(byte_ids_[size_t(b)] >= 0, src,
                  ": byte-level vocabulary lacks the token for byte ", b);
    }
  } else {
    static const char kHex[] = "0123456789ABCDEF";
    int found = 0;
    for (int b = 0; b < 256; ++b) {
      const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
      byte_ids_[size_t(b)] = m_.ids.find(name);
      found += byte_ids_[size_t(b)] >= 0;
    }
    // HF falls back to bytes only when all of a character's byte tokens exist; a
    // byte_fallback vocabulary without them is broken, so say so once here.
    LATHE_CHECK(!m_.byte_fallback || found == 256, src, ": byte_fallback is on but only ", found,
                " of the 256 <0xNN> tokens exist");
    for (int c = 0; c < 128; ++c) ascii_ids_[size_t(c)] = m_.ids.find(std::string(1, char(c)));
    space_id_ = m_.ids.find(kSpaceMark);
    // If no token contains "x▁" (a non-space character followed by "▁"), no merge can cross
    // the start of a "▁word", so words can be merged separately: same ids, and a word that
    // is itself a token is found with one lookup. Llama 2 and tinyllamas vocabularies
    // qualify; for others lathe merges the whole text at once.
    split_words_ = !m_.metaspace_split;
    for (const std::string& t : m_.texts) {
      for (size_t p = t.find(kSpaceMark, 1); split_words_ && p != std::string::npos;
           p = t.find(kSpaceMark, p + 1)) {
        if (!(p >= 3 && starts_with_mark(t, p - 3))) split_words_ = false;
      }
      if (!split_words_) break;
    }
  }
  rebuild_added();
  compute_whole_ok();
  apply_config("", "", "", "");  // the model file's own BOS/EOS defaults
}

void Tokenizer::rebuild_added() {
  int32_t size = int32_t(m_.pieces.size());
  // Added tokens follow the vocabulary (HF numbers them vocab, vocab + 1, ...); the id
  // tables below are sized by the largest id, so an id past that is refused, not allocated.
  const size_t max_id = m_.pieces.size() + m_.added.size();
  for (const tok::AddedToken& a : m_.added) {
    LATHE_CHECK(a.id >= 0 && size_t(a.id) < max_id, m_.source, ": added token \"", a.content,
                "\" has id ", a.id, "; with ", m_.pieces.size(), " vocabulary and ",
                m_.added.size(), " added tokens, ids end at ", max_id - 1);
    size = std::max(size, a.id + 1);
  }
  tokens_.assign(size_t(size), std::string());
  decoded_.assign(size_t(size), std::string());
  byte_value_.assign(size_t(size), -1);
  special_.assign(size_t(size), 0);
  for (size_t id = 0; id < m_.pieces.size(); ++id) {
    const std::string& p = m_.pieces[id];
    tokens_[id] = p;
    if (m_.kind == tok::Kind::kByteLevel) {
      decoded_[id] = m_.texts[id];
      continue;
    }
    if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && isxdigit(uint8_t(p[3])) &&
        isxdigit(uint8_t(p[4]))) {
      byte_value_[id] = int16_t(std::stoi(p.substr(3, 2), nullptr, 16));
    }
    std::string& d = decoded_[id];
    for (size_t i = 0; i < p.size();) {
      if (starts_with_mark(p, i)) {
        d += ' ';
        i += 3;
      } else {
        d += p[i++];
      }
    }
  }
  added_ids_.clear();
  for (const tok::AddedToken& a : m_.added) {
    tokens_[size_t(a.id)] = a.content;
    decoded_[size_t(a.id)] = a.content;
    byte_value_[size_t(a.id)] = -1;
    special_[size_t(a.id)] = a.special;
    added_ids_.emplace(a.content, a.id);
  }
  // Literal matching order: by first byte, then longest first (leftmost-longest, as HF's
  // Aho-Corasick over added tokens).
  added_order_.clear();
  for (size_t i = 0; i < m_.added.size(); ++i) added_order_.push_back(int32_t(i));
  std::sort(added_order_.begin(), added_order_.end(), [&](int32_t x, int32_t y) {
    const std::string& a = m_.added[size_t(x)].content;
    const std::string& b = m_.added[size_t(y)].content;
    if (uint8_t(a[0]) != uint8_t(b[0])) return uint8_t(a[0]) < uint8_t(b[0]);
    return a.size() > b.size();
  });
  added_first_.fill(0);
  for (int32_t i : added_order_) ++added_first_[uint8_t(m_.added[size_t(i)].content[0]) + 1u];
  for (size_t b = 1; b < added_first_.size(); ++b) added_first_[b] += added_first_[b - 1];
  added_lead_ = -1;
  for (int b = 0; b < 256 && !added_order_.empty(); ++b) {
    if (added_first_[size_t(b) + 1] - added_first_[size_t(b)] == added_order_.size())
      added_lead_ = b;
  }
}

void Tokenizer::compute_whole_ok() {
  // A word that is itself a token may still merge into something else (Llama 3's " Việt"
  // is token 101798, but its merges end at 11655 26298 83). The lookup shortcut is taken
  // only for tokens whose own merges rebuild them, so it returns exactly what merging
  // would. whole_ok_ is all zero while this runs, so encode_word merges every token.
  whole_ok_.assign(m_.pieces.size(), 0);
  std::vector<uint8_t> ok(m_.pieces.size(), 0);
  Scratch s;
  std::vector<int32_t> out;
  for (size_t id = 0; id < m_.texts.size(); ++id) {
    if (m_.texts[id].empty()) continue;
    out.clear();
    encode_word(m_.texts[id], out, s);
    ok[id] = out.size() == 1 && out[0] == int32_t(id);
  }
  whole_ok_ = std::move(ok);
}

void Tokenizer::append_symbols(std::string_view w, std::vector<int32_t>& out) const {
  const auto* b = reinterpret_cast<const uint8_t*>(w.data());
  if (m_.kind == tok::Kind::kByteLevel) {
    for (size_t i = 0; i < w.size(); ++i) out.push_back(byte_ids_[b[i]]);
    return;
  }
  bool last_unk = false;
  for (size_t i = 0; i < w.size();) {
    size_t len = 1;
    int32_t id;
    if (b[i] < 0x80) {
      id = ascii_ids_[b[i]];
    } else if (starts_with_mark(w, i)) {
      id = space_id_;
      len = 3;
    } else {
      len = std::min<size_t>(tok::utf8_len(b[i]), w.size() - i);
      id = m_.ids.find(w.substr(i, len));
    }
    if (id >= 0) {
      out.push_back(id);
      last_unk = false;
    } else if (m_.byte_fallback) {
      for (size_t k = 0; k < len; ++k) out.push_back(byte_ids_[b[i + k]]);
      last_unk = false;
    } else {
      LATHE_CHECK(unk_id_ >= 0, m_.source, ": character \"", w.substr(i, len),
                  "\" is not in the vocabulary and there is no unk_token or byte fallback");
      if (!(m_.fuse_unk && last_unk)) out.push_back(unk_id_);
      last_unk = true;
    }
    i += len;
  }
}

void Tokenizer::encode_word(std::string_view word, std::vector<int32_t>& out, Scratch& s) const {
  const int32_t id = m_.ids.find(word);
  if (id >= 0 && size_t(id) < whole_ok_.size() && whole_ok_[size_t(id)]) {
    out.push_back(id);
    return;
  }
  const size_t begin = out.size();
  append_symbols(word, out);
  tok::bpe_merge(m_.pairs, out, begin, s.merge);
}

void Tokenizer::encode_spm(std::string_view text, bool at_start, std::vector<int32_t>& out,
                           Scratch& s) const {
  if (m_.remove_extra_whitespaces) {  // SentencePiece: trim, and collapse runs of " "
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  }
  if (text.empty()) return;  // HF's Prepend and SentencePiece leave "" empty
  std::string& norm = s.norm;
  norm.clear();
  bool prepend =
      m_.prepend == tok::Prepend::kAlways || (m_.prepend == tok::Prepend::kFirst && at_start);
  if (prepend && m_.prepend_unless_leading_space &&
      (text.front() == ' ' || starts_with_mark(text, 0))) {
    prepend = false;
  }
  if (prepend) norm += kSpaceMark;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != ' ') {
      norm += text[i];
    } else if (!(m_.remove_extra_whitespaces && i > 0 && text[i - 1] == ' ')) {
      norm += kSpaceMark;
    }
  }
  const std::string_view n = norm;
  // ignore_merges: the pre-token (here the whole segment, or a Metaspace word) is one
  // token when the vocabulary has it.
  auto word = [&](std::string_view w) {
    const int32_t id = m_.ignore_merges ? m_.ids.find(w) : -1;
    if (id >= 0) {
      out.push_back(id);
    } else {
      encode_word(w, out, s);
    }
  };
  if (m_.metaspace_split) {
    // Metaspace split: every "▁" starts a new word.
    size_t start = 0;
    for (size_t p = n.find(kSpaceMark, 1); p != std::string_view::npos;
         p = n.find(kSpaceMark, p + 1)) {
      word(n.substr(start, p - start));
      start = p;
    }
    word(n.substr(start));
    return;
  }
  if (m_.ignore_merges) {
    const int32_t id = m_.ids.find(n);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (!split_words_) {
    const size_t begin = out.size();
    append_symbols(n, out);
    tok::bpe_merge(m_.pairs, out, begin, s.merge);
    return;
  }
  // Words start at a "▁" that follows something else ("▁▁▁the" stays together).
  size_t start = 0;
  for (size_t i = 1; i < n.size(); ++i) {
    if (n[i] == kSpaceMark[0] && starts_with_mark(n, i) &&
        !(i >= 3 && starts_with_mark(n, i - 3))) {
      encode_word(n.substr(start, i - start), out, s);
      start = i;
    }
  }
  encode_word(n.substr(start), out, s);
}

void Tokenizer::encode_byte_level(std::string_view text, std::vector<int32_t>& out,
                                  Scratch& s) const {
  if (text.empty()) return;
  if (m_.add_prefix_space && text.front() != ' ') {
    s.prefixed.assign(" ");
    s.prefixed.append(text);
    text = s.prefixed;
  }
  s.ends.clear();
  tok::split_pretokens(text, m_.regex, m_.max_digits, s.split, s.ends);
  size_t start = 0;
  for (uint32_t end : s.ends) {
    const std::string_view w = text.substr(start, end - start);
    start = end;
    const int32_t id = m_.ids.find(w);
    if (id >= 0 && (m_.ignore_merges || whole_ok_[size_t(id)])) {
      out.push_back(id);
      continue;
    }
    const size_t begin = out.size();
    append_symbols(w, out);
    tok::bpe_merge(m_.pairs, out, begin, s.merge);
  }
}

void Tokenizer::encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& out,
                               Scratch& s) const {
  if (m_.kind == tok::Kind::kByteLevel) {
    encode_byte_level(text, out, s);
  } else {
    encode_spm(text, at_start, out, s);
  }
}

void Tokenizer::encode_into(std::string_view text, bool add_special,
                            std::vector<int32_t>& out) const {
  Scratch s;
  if (add_special && add_bos_) out.push_back(bos_id_);
  size_t seg = 0;  // start of the text not yet encoded
  if (!added_order_.empty()) {
    const auto* b = reinterpret_cast<const uint8_t*>(text.data());
    for (size_t i = 0; i < text.size(); ++i) {
      if (added_lead_ >= 0) {
        // All added tokens start with one byte (Llama's "<"): memchr skips to it.
        const void* p = std::memchr(b + i, added_lead_, text.size() - i);
        if (p == nullptr) break;
        i = size_t(static_cast<const uint8_t*>(p) - b);
      }
      const uint32_t lo = added_first_[b[i]], hi = added_first_[b[i] + 1u];
      for (uint32_t k = lo; k < hi; ++k) {
        const tok::AddedToken& a = m_.added[size_t(added_order_[k])];
        if (text.compare(i, a.content.size(), a.content) != 0) continue;
        size_t seg_end = i, next = i + a.content.size();
        if (a.lstrip) {
          while (seg_end > seg && ascii_space(text[seg_end - 1])) --seg_end;
        }
        if (a.rstrip) {
          while (next < text.size() && ascii_space(text[next])) ++next;
        }
        encode_segment(text.substr(seg, seg_end - seg), seg == 0, out, s);
        out.push_back(a.id);
        seg = next;
        i = next - 1;
        break;
      }
    }
  }
  encode_segment(text.substr(seg), seg == 0, out, s);
  if (add_special && add_eos_) out.push_back(eos_id_);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> out;
  // About 4 bytes per token in English: one allocation for most texts.
  out.reserve(text.size() / 3 + 4);
  encode_into(text, add_special, out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  std::string run;  // consecutive <0xNN> bytes, checked as UTF-8 together (HF ByteFallback)
  auto flush = [&] {
    if (run.empty()) return;
    if (tok::utf8_valid(run)) {
      out += run;
    } else {
      for (size_t i = 0; i < run.size(); ++i) out += "\xEF\xBF\xBD";
    }
    run.clear();
  };
  for (int32_t id : ids) {
    LATHE_CHECK(id >= 0 && id < vocab_size(), "decode: token id ", id, " is outside 0..",
                vocab_size() - 1);
    if (skip_special && special_[size_t(id)]) continue;
    if (byte_value_[size_t(id)] >= 0) {
      run += char(byte_value_[size_t(id)]);
      continue;
    }
    flush();
    out += decoded_[size_t(id)];
  }
  flush();
  if (m_.kind == tok::Kind::kByteLevel) return tok::utf8_lossy(out);
  if (m_.decode_strip_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::string Tokenizer::piece(int32_t id) const {
  LATHE_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside 0..", vocab_size() - 1);
  return tokens_[size_t(id)];
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  LATHE_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside 0..", vocab_size() - 1);
  if (byte_value_[size_t(id)] >= 0) {
    static const std::array<std::string, 256> bytes = [] {
      std::array<std::string, 256> b;
      for (int i = 0; i < 256; ++i) b[size_t(i)] = std::string(1, char(i));
      return b;
    }();
    return bytes[size_t(byte_value_[size_t(id)])];
  }
  return decoded_[size_t(id)];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[size_t(id)];
}

std::optional<int32_t> Tokenizer::find(std::string_view token) const {
  if (auto it = added_ids_.find(std::string(token)); it != added_ids_.end()) return it->second;
  int32_t id = -1;
  if (m_.kind == tok::Kind::kByteLevel) {
    std::string raw;
    if (tok::byte_level_map().decode(token, raw)) id = m_.ids.find(raw);
  } else {
    id = m_.ids.find(token);
  }
  if (id < 0) return std::nullopt;
  return id;
}

}  // namespace lathe
