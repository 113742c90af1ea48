// What the tokenizer targets encode once a file parsed: text that reaches every path of
// both tokenizer kinds (spaces and runs of them, digits for the digit split, contractions,
// CJK and emoji for byte fallback, an invalid UTF-8 byte, the Llama 2 and 3 specials).
#pragma once
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace lathe::fuzz {

inline constexpr std::string_view kSampleText =
    "<s>Hello  world! It's 12345 tokens\n\n\tthat've\xC3\xA9t\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD "
    "\xF0\x9F\x98\x80 \xFF end<|eot_id|> <|begin_of_text|>x  ";

// Encodes, decodes and looks up every piece; results are not checked (the unit tests do
// that against references), only that nothing reads out of bounds on any model that loaded.
inline void exercise_tokenizer(const Tokenizer& t, std::string_view text) {
  for (bool special : {true, false}) {
    std::vector<int32_t> ids = t.encode(text, special);
    (void)t.decode(ids, false);
    (void)t.decode(ids, true);
    for (int32_t id : ids) (void)t.find(t.piece(id));
  }
}

}  // namespace lathe::fuzz
