#include "tokenizer/text.h"

#include <algorithm>

#include "tokenizer/unicode_tables.h"

namespace lathe::tok {

namespace {

// Direct table for the first 0x800 code points (ASCII, Latin, Greek, Cyrillic, Hebrew,
// Arabic): most text never reaches the binary search.
constexpr uint32_t kDirect = 0x800;

struct DirectClasses {
  std::array<uint8_t, kDirect> cls{};
  DirectClasses() {
    int e = 0;
    for (uint32_t cp = 0; cp < kDirect; ++cp) {
      while (e + 1 < unicode::kClassTableSize && (unicode::kClassTable[e + 1] >> 2) <= cp) ++e;
      cls[cp] = uint8_t(unicode::kClassTable[e] & 3);
    }
  }
};

const DirectClasses& direct_classes() {
  static const DirectClasses t;
  return t;
}

}  // namespace

CharClass char_class(uint32_t cp) {
  if (cp < kDirect) return CharClass(direct_classes().cls[cp]);
  // Last entry whose first code point is <= cp.
  const uint32_t* begin = unicode::kClassTable;
  const uint32_t* end = begin + unicode::kClassTableSize;
  const uint32_t* it = std::upper_bound(begin, end, (cp << 2) | 3);
  return CharClass(it[-1] & 3);
}

Utf8Char utf8_next(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  const size_t left = s.size() - i;
  const uint8_t b0 = p[0];
  if (b0 < 0x80) return {b0, 1};
  constexpr Utf8Char kBad{0xFFFD, 1};
  auto cont = [&](size_t k) { return k < left && (p[k] & 0xC0) == 0x80; };
  if (b0 < 0xC2) return kBad;  // continuation byte, or an overlong 2-byte lead
  if (b0 < 0xE0) return cont(1) ? Utf8Char{uint32_t(b0 & 0x1F) << 6 | (p[1] & 0x3F), 2} : kBad;
  if (b0 < 0xF0) {
    if (!cont(1) || !cont(2)) return kBad;
    const uint32_t cp = uint32_t(b0 & 0x0F) << 12 | uint32_t(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    if (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000)) return kBad;  // overlong or surrogate
    return {cp, 3};
  }
  if (b0 < 0xF5) {
    if (!cont(1) || !cont(2) || !cont(3)) return kBad;
    const uint32_t cp = uint32_t(b0 & 0x07) << 18 | uint32_t(p[1] & 0x3F) << 12 |
                        uint32_t(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
    if (cp < 0x10000 || cp > 0x10FFFF) return kBad;
    return {cp, 4};
  }
  return kBad;
}

void utf8_append(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool utf8_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_next(s, i);
    // A real U+FFFD is 3 bytes; a 1-byte U+FFFD is the malformed marker.
    if (c.cp == 0xFFFD && c.len == 1) return false;
    i += c.len;
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  if (utf8_valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_next(s, i);
    if (!(c.cp == 0xFFFD && c.len == 1)) {
      out.append(s.substr(i, c.len));
      i += c.len;
      continue;
    }
    // Maximal subpart (Unicode 3.9, what Rust's from_utf8_lossy replaces): a lead byte
    // followed by the continuation bytes that are still valid for it counts as one error.
    const uint8_t b0 = p[i];
    size_t n = 1;
    if (b0 >= 0xC2 && b0 < 0xF5) {
      const size_t need = b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
      for (size_t k = 1; k < need && i + k < s.size(); ++k) {
        const uint8_t b = p[i + k];
        uint8_t lo = 0x80, hi = 0xBF;
        if (k == 1) {
          if (b0 == 0xE0) lo = 0xA0;
          if (b0 == 0xED) hi = 0x9F;
          if (b0 == 0xF0) lo = 0x90;
          if (b0 == 0xF4) hi = 0x8F;
        }
        if (b < lo || b > hi) break;
        n = k + 1;
      }
    }
    out += "\xEF\xBF\xBD";
    i += n;
  }
  return out;
}

ByteLevelMap::ByteLevelMap() {
  from_cp.fill(-1);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    to_cp[b] = printable ? uint32_t(b) : next++;
    from_cp[to_cp[b]] = int16_t(b);
  }
}

std::string ByteLevelMap::encode(std::string_view bytes) const {
  std::string out;
  for (unsigned char b : bytes) utf8_append(to_cp[b], out);
  return out;
}

bool ByteLevelMap::decode(std::string_view s, std::string& bytes) const {
  bytes.clear();
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_next(s, i);
    if (c.cp >= from_cp.size() || from_cp[c.cp] < 0 || (c.cp == 0xFFFD && c.len == 1)) return false;
    bytes += char(from_cp[c.cp]);
    i += c.len;
  }
  return true;
}

const ByteLevelMap& byte_level_map() {
  static const ByteLevelMap m;
  return m;
}

namespace {

bool is_newline(uint32_t cp) { return cp == '\r' || cp == '\n'; }

// ASCII-only lowering is enough: the only non-ASCII character that Unicode case folding
// maps onto one of s/t/r/e/v/m/l/d is U+017F LATIN SMALL LETTER LONG S (-> s), handled
// where it can occur.
uint32_t lower_ascii(uint32_t cp) { return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp; }

// Length in characters of the contraction at i (0 if none). case_insensitive is the
// (?i:...) of the Llama 3 pattern; GPT-2's is case sensitive.
size_t contraction(const uint32_t* cp, size_t i, size_t n, bool case_insensitive) {
  if (cp[i] != '\'' || i + 1 >= n) return 0;
  auto fold = [&](uint32_t c) {
    if (!case_insensitive) return c;
    return c == 0x17F ? uint32_t('s') : lower_ascii(c);
  };
  const uint32_t a = fold(cp[i + 1]);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= n) return 0;
  const uint32_t b = fold(cp[i + 2]);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// The whitespace alternatives shared by both patterns, at a whitespace character i.
// with_newline_rule adds Llama 3's \s*[\r\n]+ (a whitespace run up to its last newline).
size_t match_space(const uint32_t* cp, const uint8_t* cls, size_t i, size_t n,
                   bool with_newline_rule) {
  size_t j = i;
  size_t last_newline = SIZE_MAX;
  while (j < n && cls[j] == kSpace) {
    if (is_newline(cp[j])) last_newline = j;
    ++j;
  }
  if (with_newline_rule && last_newline != SIZE_MAX) return last_newline + 1;
  // \s+(?!\S): the whole run at the end of the text, else the run minus its last
  // character (which the next token takes as its leading space); \s+ when that is empty.
  if (j == n) return j;
  if (j - 1 > i) return j - 1;
  return j;
}

size_t match_llama3(const uint32_t* cp, const uint8_t* cls, size_t i, size_t n, int max_digits) {
  if (size_t k = contraction(cp, i, n, true)) return i + k;
  auto run = [&](size_t j, uint8_t c) {
    while (j < n && cls[j] == c) ++j;
    return j;
  };
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (cls[i] == kLetter) return run(i + 1, kLetter);
  if (cls[i] != kNumber && !is_newline(cp[i]) && i + 1 < n && cls[i + 1] == kLetter) {
    return run(i + 2, kLetter);
  }
  // \p{N}{1,3}
  if (cls[i] == kNumber) {
    size_t j = i + 1;
    while (j < n && j < i + size_t(max_digits) && cls[j] == kNumber) ++j;
    return j;
  }
  // " ?[^\s\p{L}\p{N}]+[\r\n]*"
  size_t k = i;
  if (cp[i] == ' ' && i + 1 < n && cls[i + 1] == kOther) k = i + 1;
  if (cls[k] == kOther) {
    size_t j = run(k + 1, kOther);
    while (j < n && is_newline(cp[j])) ++j;
    return j;
  }
  return match_space(cp, cls, i, n, true);
}

size_t match_gpt2(const uint32_t* cp, const uint8_t* cls, size_t i, size_t n) {
  if (size_t k = contraction(cp, i, n, false)) return i + k;
  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": the optional space binds to a run of
  // any of the three kinds.
  size_t k = i;
  if (cp[i] == ' ' && i + 1 < n && cls[i + 1] != kSpace) k = i + 1;
  if (cls[k] != kSpace) {
    size_t j = k + 1;
    while (j < n && cls[j] == cls[k]) ++j;
    return j;
  }
  return match_space(cp, cls, i, n, false);
}

}  // namespace

void split_pretokens(std::string_view text, SplitRegex re, int max_digits, SplitScratch& s,
                     std::vector<uint32_t>& ends) {
  s.cps.clear();
  s.cls.clear();
  s.offs.clear();
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  for (size_t i = 0; i < text.size();) {
    Utf8Char c;
    if (bytes[i] < 0x80) {
      c = {bytes[i], 1};
    } else {
      c = utf8_next(text, i);
    }
    s.cps.push_back(c.cp);
    // A malformed byte is matched as punctuation ("other"), like a lone symbol.
    s.cls.push_back(c.cp == 0xFFFD && c.len == 1 ? uint8_t(kOther) : uint8_t(char_class(c.cp)));
    s.offs.push_back(uint32_t(i));
    i += c.len;
  }
  const size_t n = s.cps.size();
  s.offs.push_back(uint32_t(text.size()));
  for (size_t i = 0; i < n;) {
    const size_t j = re == SplitRegex::kLlama3
                         ? match_llama3(s.cps.data(), s.cls.data(), i, n, max_digits)
                         : match_gpt2(s.cps.data(), s.cls.data(), i, n);
    ends.push_back(s.offs[j]);
    i = j;
  }
}

}  // namespace lathe::tok
