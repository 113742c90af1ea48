// Streamed text never carries part of a UTF-8 character: byte-fallback tokens (Llama 2,
// stories260K: <0xE4><0xBD><0xA0>) and byte-level tokens (Llama 3) split characters over
// several tokens, and the stream holds their bytes until the character is complete. This is
// TextStream (what `lathe generate` and `lathe chat` print) and the server's ChoiceStream on
// top of it; concatenated, the pieces equal the whole text.
#include "serve/choice_stream.h"

#include <gtest/gtest.h>

#include "generate/generate_test_util.h"
#include "generate/stop.h"
#include "tokenizer/text.h"
#include "tokenizer/tokenizer_test_util.h"

namespace lathe {
namespace {

const char* kTexts[] = {"Hi 你好, café é 😀! Ünïcödé ✓ — done", "日本語のテキスト", "a😀😀b"};

bool is_char_boundary_clean(const std::string& piece) {
  return tok::utf8_valid(piece) && piece.find("\xEF\xBF\xBD") == std::string::npos;
}

// Pushes the tokens of `text` one at a time, as if generated after `prompt`.
void check_stream(const Tokenizer& tok, const std::string& text, const char* kind) {
  const std::vector<int32_t> ids = tok.encode(text, false);
  const std::vector<int32_t> prompt = {tok.bos_id() >= 0 ? tok.bos_id() : ids[0]};
  size_t split = 0;  // tokens that did not complete a character
  TextStream ts(tok, prompt, {});
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = ts.push(id);
    EXPECT_TRUE(is_char_boundary_clean(piece)) << kind << ": piece \"" << piece << "\"";
    split += piece.empty();
    streamed += piece;
  }
  streamed += ts.finish();
  EXPECT_EQ(streamed, completion_text(tok, prompt, ids)) << kind;
  EXPECT_EQ(ts.text(), completion_text(tok, prompt, ids)) << kind;
  EXPECT_GT(split, 0u) << kind << ": \"" << text << "\" should split a character somewhere";

  ChoiceStream cs(tok, prompt, {});
  std::string served;
  for (int32_t id : ids) {
    SeqUpdate u;
    u.tokens.push_back(TokenLogprob{id, 0, {}});
    cs.apply(u);
    const ChoiceDelta d = cs.take();
    EXPECT_TRUE(is_char_boundary_clean(d.text)) << kind << ": delta \"" << d.text << "\"";
    served += d.text;
  }
  SeqUpdate end;
  end.finished = true;
  end.finish_reason = "length";
  cs.apply(end);
  served += cs.take().text;
  EXPECT_EQ(served, streamed) << kind;
  EXPECT_EQ(cs.finish_reason(), "length");
}

TEST(Utf8Holding, ByteFallbackTokens) {
  const Tokenizer& tok = *gen_test::stories().tok;  // 512 tokens: every CJK character is bytes
  for (const char* t : kTexts) check_stream(tok, t, "stories260K");
}

// A prompt that ends in characters spelled in bytes, its last 8 tokens starting in the middle
// of one: the output's characters (bytes too) must still decode, however many prompt tokens
// precede them.
TEST(Utf8Holding, OutputAfterAPromptOfSplitCharacters) {
  const Tokenizer& tok = *gen_test::stories().tok;
  // 24 byte tokens (and the "▁" SentencePiece puts before a text, dropped).
  auto bytes_of = [&](const char* text) {
    std::vector<int32_t> ids = tok.encode(text, false);
    if (!ids.empty() && tok.token_bytes(ids[0]) == " ") ids.erase(ids.begin());
    return ids;
  };
  const std::vector<int32_t> chinese = bytes_of("你好你好你好你好");
  const std::vector<int32_t> output = bytes_of("世界");
  ASSERT_EQ(chinese.size(), 24u);
  for (size_t cut = 20; cut <= 24; ++cut) {
    std::vector<int32_t> prompt = {tok.bos_id()};
    prompt.insert(prompt.end(), chinese.begin(), chinese.begin() + std::ptrdiff_t(cut));
    // The prompt itself may end mid-character (cut 20, 22, 23): its partial bytes then
    // merge with the output's, and only the output's own complete characters are asked for.
    if (cut % 3 != 0) continue;
    EXPECT_EQ(completion_text(tok, prompt, output), "世界") << "prompt of " << cut << " bytes";
    TextStream ts(tok, prompt, {});
    std::string streamed;
    for (int32_t id : output) streamed += ts.push(id);
    EXPECT_EQ(streamed + ts.finish(), "世界") << "prompt of " << cut << " bytes";
  }
}

TEST(Utf8Holding, ByteLevelTokens) {
  LATHE_TOKENIZER_OR_SKIP(tok, "llama3-json");
  // Llama 3 merges most of these whole; rare characters stay split over byte tokens.
  for (const char* t : {"a😀😀b 🦙🦙 𝔘𝔫𝔦", "\xF0\x9F\xA7\xAC\xF0\x9F\xA7\xAC"})
    check_stream(*tok, t, "llama3");
}

TEST(Utf8Holding, StopStringsAndLogprobEntries) {
  const Tokenizer& tok = *gen_test::stories().tok;
  const std::vector<int32_t> prompt = {tok.bos_id()};
  const std::vector<int32_t> ids = tok.encode("The cat sat. Then 你 left", false);
  ChoiceStream::Options o;
  o.stops = {"Then"};
  o.logprobs = true;
  ChoiceStream cs(tok, prompt, o);
  std::string text;
  size_t pushed = 0;
  for (int32_t id : ids) {
    SeqUpdate u;
    u.tokens.push_back(TokenLogprob{id, -0.5f, {{id, -0.5f}}});
    ++pushed;
    const bool ended = cs.apply(u);
    const ChoiceDelta d = cs.take();
    text += d.text;
    // Nothing that begins the stop string is sent before it is known not to be one.
    EXPECT_EQ(text.find("Th", 12), std::string::npos) << text;
    if (ended) break;
  }
  EXPECT_TRUE(cs.finished());
  EXPECT_EQ(cs.finish_reason(), "stop");
  EXPECT_EQ(text, "The cat sat. ");
  EXPECT_LT(pushed, ids.size());  // it ended at the token that completed "Then"
  EXPECT_EQ(size_t(cs.completion_tokens()), pushed);
}

TEST(Utf8Holding, EchoEntriesCoverThePrompt) {
  const Tokenizer& tok = *gen_test::stories().tok;
  const std::vector<int32_t> prompt = tok.encode("Once upon a time", true);
  ChoiceStream::Options o;
  o.logprobs = true;
  o.echo = true;
  ChoiceStream cs(tok, prompt, o);
  SeqUpdate u;
  for (size_t j = 1; j < prompt.size(); ++j) u.prompt.push_back({prompt[j], -1.0f * float(j), {}});
  u.tokens.push_back({tok.encode(",", false).back(), -0.25f, {}});
  u.finished = true;
  u.finish_reason = "length";
  cs.apply(u);
  const ChoiceDelta d = cs.take();
  EXPECT_EQ(d.text, "Once upon a time,");
  ASSERT_EQ(d.entries.size(), prompt.size() + 1);
  EXPECT_FALSE(d.entries[0].logprob.has_value());  // nothing predicts the first token
  for (size_t j = 1; j < prompt.size(); ++j)
    EXPECT_FLOAT_EQ(*d.entries[j].logprob, -1.0f * float(j));
  EXPECT_FLOAT_EQ(*d.entries.back().logprob, -0.25f);
  // Offsets point into the returned text: each entry's token starts there.
  for (const TokenEntry& e : d.entries) {
    ASSERT_LE(size_t(e.text_offset), d.text.size());
    if (e.token != "<s>" && e.token[0] != ' ') {
      EXPECT_EQ(d.text.compare(size_t(e.text_offset), e.token.size(), e.token), 0) << e.token;
    }
  }
}

}  // namespace
}  // namespace lathe
