#include "generate/stop.h"

#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
// Prompt tokens decoded before the output: enough to cover a split UTF-8 character.
constexpr size_t kContext = 8;

std::string decode_known(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<int32_t> known;
  known.reserve(ids.size());
  for (int32_t id : ids)
    if (id >= 0 && id < tok.vocab_size()) known.push_back(id);
  return tok.decode(known, /*skip_special=*/true);
}
}  // namespace

std::string completion_text(const Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& output) {
  // The window must not start inside a character: SentencePiece's byte fallback checks a
  // run of <0xNN> tokens as a whole, so a run cut after a lead byte decodes to U+FFFD for
  // every byte, the output's bytes that continue the run included ("你好" after a prompt of
  // Chinese text came out as six U+FFFD). Tokens whose bytes begin with a continuation byte
  // (10xxxxxx) are taken into the window until one does not, at most 3 more for 4-byte UTF-8.
  size_t start = prompt.size() - std::min(prompt.size(), kContext);
  for (int k = 0; k < 3 && start > 0; ++k) {
    const int32_t id = prompt[start];
    if (id < 0 || id >= tokenizer.vocab_size()) break;
    const std::string& b = tokenizer.token_bytes(id);
    if (b.empty() || (static_cast<unsigned char>(b[0]) & 0xC0) != 0x80) break;
    --start;
  }
  std::vector<int32_t> ids(prompt.begin() + std::ptrdiff_t(start), prompt.end());
  const std::string context = decode_known(tokenizer, ids);
  ids.insert(ids.end(), output.begin(), output.end());
  std::string text = decode_known(tokenizer, ids);
  if (text.compare(0, context.size(), context) == 0) return text.substr(context.size());
  return decode_known(tokenizer, output);  // the context's end changed: a split character
}

size_t find_stop_string(std::string_view text, const std::vector<std::string>& stops) {
  size_t best = std::string_view::npos;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    best = std::min(best, text.find(s));
  }
  return best;
}

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<int32_t> prompt,
                       std::vector<std::string> stops)
    : tok_(tokenizer), stops_(std::move(stops)), prompt_(std::move(prompt)) {}

std::string TextStream::push(int32_t token) {
  if (stopped_) return "";
  tokens_.push_back(token);
  std::string text = completion_text(tok_, prompt_, tokens_);
  size_t safe = text.size();
  const size_t stop = find_stop_string(text, stops_);
  if (stop != std::string::npos) {
    safe = stop;
    text.resize(stop);
    stopped_ = true;
  } else {
    // A trailing U+FFFD may be the first bytes of a character the next token completes:
    // byte-fallback tokens (<0xE4><0xBD><0xA0>) and byte-level ones split characters, and
    // decoding shows the incomplete bytes as U+FFFD until the last one arrives.
    while (safe >= kReplacement.size() &&
           std::string_view(text).substr(safe - kReplacement.size(), kReplacement.size()) ==
               kReplacement)
      safe -= kReplacement.size();
    // The longest end of the text that begins some stop string waits for the next token.
    size_t hold = 0;
    for (const std::string& s : stops_)
      for (size_t n = std::min(s.size() - (s.empty() ? 0 : 1), safe); n > hold; --n)
        if (std::string_view(text).substr(safe - n, n) == std::string_view(s).substr(0, n)) {
          hold = n;
          break;
        }
    safe -= hold;
  }
  text_ = std::move(text);
  if (safe <= printed_) return "";
  std::string out = text_.substr(printed_, safe - printed_);
  printed_ = safe;
  return out;
}

std::string TextStream::finish(const std::string& final_text) {
  if (printed_ >= final_text.size()) return "";
  std::string out = final_text.substr(printed_);
  printed_ = final_text.size();
  return out;
}

}  // namespace lathe
