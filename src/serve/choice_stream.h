// One choice of a request as the client sees it: the scheduler's tokens turned into text
// that is safe to send (never part of a UTF-8 character, never the beginning of a stop
// string that may follow), the end at a stop string, and each token's log-probability in
// the forms OpenAI's APIs use. Streamed deltas, concatenated, equal the non-streamed text.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "generate/stop.h"
#include "serve/scheduler.h"

namespace lathe {

class Tokenizer;

// A token's log-probability entry.
struct TokenEntry {
  int32_t id = -1;
  std::string token;             // its text, or "bytes:\xNN" when only part of a character
  std::string bytes;             // the raw bytes it adds to the text
  std::optional<float> logprob;  // null for the first prompt token (nothing predicts it)
  std::vector<TokenEntry> top;   // the most likely tokens at its position (no `top` of their own)
  int64_t text_offset = 0;       // characters of the choice's text before it
};

struct ChoiceDelta {
  std::string text;
  std::vector<TokenEntry> entries;  // the tokens whose text is in `text` (or held before it)
};

class ChoiceStream {
 public:
  struct Options {
    std::vector<std::string> stops;
    bool logprobs = false;       // fill TokenEntry for each token
    bool echo = false;           // the text starts with the prompt (completions' echo)
    bool strip_leading = false;  // chat: the reply's first spaces are not part of the message
  };
  ChoiceStream(const Tokenizer& tokenizer, std::vector<int32_t> prompt, Options options);

  // Applies what the scheduler reported. Returns true when the choice just ended: a stop
  // string appeared (the caller then cancels the sequence) or the sequence finished.
  bool apply(SeqUpdate update);
  // Text and entries ready to send since the last call (all of it once finished()).
  ChoiceDelta take();

  bool finished() const { return finished_; }
  const std::string& finish_reason() const { return finish_reason_; }  // "stop" | "length"
  const std::string& error() const { return error_; }
  // Generated tokens, the EOS or stop token that ended them included (OpenAI's count).
  int64_t completion_tokens() const { return int64_t(stream_.tokens().size()) + end_tokens_; }
  int64_t prompt_tokens() const { return int64_t(prompt_.size()); }

 private:
  TokenEntry entry(int32_t id, std::optional<float> lp,
                   const std::vector<std::pair<int32_t, float>>& top, int64_t offset) const;
  void add_text(std::string s);

  const Tokenizer& tok_;
  std::vector<int32_t> prompt_;
  Options opt_;
  TextStream stream_;
  std::string ready_;                // text not yet taken
  std::vector<TokenEntry> entries_;  // entries not yet taken
  std::string echo_text_;
  int64_t echo_chars_ = 0;
  bool started_ = false;  // strip_leading: a non-space character was sent
  bool echo_sent_ = false;
  int64_t end_tokens_ = 0;
  bool finished_ = false;
  std::string finish_reason_, error_;
};

// Characters (code points) in valid UTF-8 text.
int64_t utf8_chars(const std::string& s);

}  // namespace lathe
