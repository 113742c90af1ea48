#include "serve/choice_stream.h"

#include <cstdio>

#include "tokenizer/text.h"
#include "tokenizer/tokenizer.h"

namespace lathe {

int64_t utf8_chars(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

ChoiceStream::ChoiceStream(const Tokenizer& tokenizer, std::vector<int32_t> prompt, Options options)
    : tok_(tokenizer),
      prompt_(std::move(prompt)),
      opt_(std::move(options)),
      stream_(tokenizer, prompt_, opt_.stops) {
  if (opt_.echo) {
    echo_text_ = tok_.decode(prompt_, /*skip_special=*/true);
    echo_chars_ = utf8_chars(echo_text_);
  }
}

TokenEntry ChoiceStream::entry(int32_t id, std::optional<float> lp,
                               const std::vector<std::pair<int32_t, float>>& top,
                               int64_t offset) const {
  TokenEntry e;
  e.id = id;
  if (id >= 0 && id < tok_.vocab_size()) e.bytes = tok_.token_bytes(id);
  if (tok::utf8_valid(e.bytes)) {
    e.token = e.bytes;
  } else {  // part of a character: OpenAI writes such tokens as their bytes
    e.token = "bytes:";
    for (unsigned char c : e.bytes) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      e.token += hex;
    }
  }
  e.logprob = lp;
  e.text_offset = offset;
  for (const auto& [tid, tlp] : top) e.top.push_back(entry(tid, tlp, {}, 0));
  return e;
}

void ChoiceStream::add_text(std::string s) {
  if (opt_.strip_leading && !started_) {
    const size_t b = s.find_first_not_of(' ');
    s = b == std::string::npos ? "" : s.substr(b);
    started_ = !s.empty();
  }
  ready_ += s;
}

bool ChoiceStream::apply(SeqUpdate u) {
  if (finished_) return false;
  if (opt_.echo && !echo_sent_) {
    // The prompt's text first; with logprobs, its tokens' entries (offsets into the prompt
    // text, whose first token has no log-probability). Waits for the prompt logprobs.
    if (opt_.logprobs && u.prompt.empty() && !u.finished) return false;
    echo_sent_ = true;
    ready_ += echo_text_;
    if (opt_.logprobs) {
      std::vector<int32_t> prefix;
      for (size_t j = 0; j < prompt_.size(); ++j) {
        const int64_t offset = utf8_chars(tok_.decode(prefix, true));
        if (j == 0 || j - 1 >= u.prompt.size()) {
          entries_.push_back(entry(prompt_[j], std::nullopt, {}, offset));
          if (j > 0) entries_.back().top.clear();
        } else {
          const TokenLogprob& t = u.prompt[j - 1];
          entries_.push_back(entry(prompt_[j], t.logprob, t.top, offset));
        }
        prefix.push_back(prompt_[j]);
      }
    }
  }
  for (const TokenLogprob& t : u.tokens) {
    const int64_t offset = echo_chars_ + utf8_chars(stream_.text());
    if (t.ends) {  // the EOS / stop token: listed with its log-probability, no text
      if (opt_.logprobs) entries_.push_back(entry(t.id, t.logprob, t.top, offset));
      ++end_tokens_;
      continue;
    }
    add_text(stream_.push(t.id));
    if (opt_.logprobs) entries_.push_back(entry(t.id, t.logprob, t.top, offset));
    if (stream_.stopped()) {
      finished_ = true;
      finish_reason_ = "stop";
      return true;
    }
  }
  if (u.finished) {
    finished_ = true;
    add_text(stream_.finish());
    finish_reason_ = u.finish_reason == "length" ? "length" : "stop";
    error_ = u.error;
    return true;
  }
  return false;
}

ChoiceDelta ChoiceStream::take() {
  ChoiceDelta d;
  d.text = std::move(ready_);
  d.entries = std::move(entries_);
  ready_.clear();
  entries_.clear();
  return d;
}

}  // namespace lathe
