// Text primitives under the tokenizers: UTF-8 decoding, the Unicode classes the
// pre-tokenizer regexes use, GPT-2's byte <-> printable-character mapping, and the
// hand-written equivalents of the Llama 3 and GPT-2 split regexes.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lathe::tok {

enum CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

// \p{L}, \p{N}, \s (White_Space) or none of them, from the generated table.
CharClass char_class(uint32_t cp);

// Decodes the UTF-8 character at s[i]. A malformed sequence yields one byte with
// cp = 0xFFFD and len 1, so callers always advance.
struct Utf8Char {
  uint32_t cp;
  uint32_t len;
};
Utf8Char utf8_next(std::string_view s, size_t i);
void utf8_append(uint32_t cp, std::string& out);
// Byte length of a UTF-8 character from its lead byte (1 for a stray continuation byte).
inline uint32_t utf8_len(uint8_t lead) {
  return lead < 0x80 ? 1 : lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
bool utf8_valid(std::string_view s);
// Replaces each maximal malformed subsequence with U+FFFD, as Rust's from_utf8_lossy
// (and so HF's ByteLevel decoder) does.
std::string utf8_lossy(std::string_view s);

// GPT-2's bytes_to_unicode: every byte gets a printable code point (printable Latin-1
// maps to itself, the rest to U+0100.. in byte order), so byte strings become JSON-safe
// vocabulary keys ("Ġ" = space, "Ċ" = newline).
struct ByteLevelMap {
  std::array<uint32_t, 256> to_cp;
  // Code point -> byte, for code points < 0x144; -1 where none.
  std::array<int16_t, 0x144> from_cp;
  ByteLevelMap();
  std::string encode(std::string_view bytes) const;
  // False when s has a character outside the mapping (not a byte-level string).
  bool decode(std::string_view s, std::string& bytes) const;
};
const ByteLevelMap& byte_level_map();

// The split patterns byte-level BPE tokenizers use, implemented by hand.
//  kLlama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//           ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//           (max_digits 1 gives the \p{N} variant Qwen2 uses)
//  kGpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
enum class SplitRegex : uint8_t { kLlama3, kGpt2 };

// Reused buffers, so splitting a long text allocates once.
struct SplitScratch {
  std::vector<uint32_t> cps;
  std::vector<uint8_t> cls;
  std::vector<uint32_t> offs;  // byte offset of each character, plus the end
};

// Appends the byte offset where each pre-token ends. The patterns match every
// character, so the pieces tile the text.
void split_pretokens(std::string_view text, SplitRegex re, int max_digits, SplitScratch& scratch,
                     std::vector<uint32_t>& ends);

}  // namespace lathe::tok
