// Stop strings on decoded text, and streaming text that never shows what a stop string
// will later remove.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

class Tokenizer;

// The text an output adds after its prompt: decode(end of prompt + output) minus
// decode(end of prompt), so the space a SentencePiece tokenizer puts before the output's
// first word is kept (decoding the output alone drops it, as at the start of any text).
// Special tokens are skipped, as are ids the tokenizer does not have (a model's vocabulary
// may be padded past the tokenizer's).
std::string completion_text(const Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& output);

// Where the earliest occurrence of any stop string begins in `text`, or npos.
size_t find_stop_string(std::string_view text, const std::vector<std::string>& stops);

// Turns a stream of generated tokens into a stream of text for printing: what push()
// returns, concatenated, is always a prefix of the final (stop-string-trimmed) text.
// It holds back a stop string's possible beginning at the end of the text, and bytes of a
// character that the next token may complete (decoded as U+FFFD until then).
class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<int32_t> prompt,
             std::vector<std::string> stops);
  // The new text that is safe to print after `token`.
  std::string push(int32_t token);
  // The rest of `final_text` (the completion's text) not printed yet.
  std::string finish(const std::string& final_text);
  // The rest of text() not printed yet, once no token will follow.
  std::string finish() { return finish(text_); }

  // Whether a stop string has appeared: the output ends with the last token pushed.
  bool stopped() const { return stopped_; }
  // The completion's text so far, cut before the first stop string.
  const std::string& text() const { return text_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  const Tokenizer& tok_;
  std::vector<std::string> stops_;
  std::vector<int32_t> prompt_, tokens_;
  std::string text_;
  size_t printed_ = 0;
  bool stopped_ = false;
};

}  // namespace lathe
