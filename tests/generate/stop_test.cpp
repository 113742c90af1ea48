// How generation ends: EOS, stop strings (trimmed from the text), max_new_tokens and the
// model's context; and streamed text never showing what the end will remove.
#include "generate/stop.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "generate/generate_test_util.h"
#include "generate/generator.h"
#include "tokenizer/tokenizer_test_util.h"

namespace lathe {
namespace {

// stories260K's greedy text from BOS begins "Once upon a time, there was a little girl
// named Lily. She loved to play outside in the park. One day, she saw a big, red ball."
class StopTest : public ::testing::Test {
 protected:
  gen_test::LoadedModel& m = gen_test::stories();
  std::vector<int32_t> bos() const { return {m.tok->bos_id()}; }
  Generated run(GenerationOptions o, std::vector<int32_t> eos = {2}) {
    Generator g(*m.model, *m.be, m.tok.get());
    g.set_eos_tokens(std::move(eos));
    return g.generate({bos()}, o)[0];
  }
  Generated greedy(int n) {
    GenerationOptions o;
    o.max_new_tokens = n;
    return run(o);
  }
};

TEST(StopStrings, FindsTheEarliestOfAny) {
  EXPECT_EQ(find_stop_string("a big, red ball", {"ball", "big"}), 2u);
  EXPECT_EQ(find_stop_string("a big, red ball", {"ball", ""}), 11u);
  EXPECT_EQ(find_stop_string("a big, red ball", {"blue"}), std::string::npos);
  EXPECT_EQ(find_stop_string("anything", {}), std::string::npos);
}

TEST_F(StopTest, StopStringIsTrimmedAndEndsGeneration) {
  const Generated full = greedy(60);
  GenerationOptions o;
  o.max_new_tokens = 60;
  o.stop_strings = {"ball", "park"};  // "park" comes first
  const Generated g = run(o);
  EXPECT_EQ(g.stop_reason, "stop_string");
  EXPECT_EQ(g.text,
            "Once upon a time, there was a little girl named Lily. She loved to play "
            "outside in the ");
  // It stopped at the token that completed "park": the tokens are a prefix of the full run
  // and one token fewer would not contain it yet.
  ASSERT_LE(g.tokens.size(), full.tokens.size());
  EXPECT_TRUE(std::equal(g.tokens.begin(), g.tokens.end(), full.tokens.begin()));
  std::vector<int32_t> shorter(g.tokens.begin(), g.tokens.end() - 1);
  EXPECT_EQ(completion_text(*m.tok, bos(), shorter).find("park"), std::string::npos);
  EXPECT_NE(completion_text(*m.tok, bos(), g.tokens).find("park"), std::string::npos);
}

TEST_F(StopTest, StopStringAtTheVeryStartLeavesEmptyText) {
  GenerationOptions o;
  o.stop_strings = {"Once"};
  const Generated g = run(o);
  EXPECT_EQ(g.stop_reason, "stop_string");
  EXPECT_EQ(g.text, "");
  EXPECT_EQ(g.tokens.size(), 1u);
}

TEST_F(StopTest, EosEndsGenerationAndIsNotKept) {
  const Generated full = greedy(40);
  // Declare the 11th generated token EOS: generation ends at its first occurrence.
  const int32_t eos = full.tokens[10];
  const size_t first =
      size_t(std::find(full.tokens.begin(), full.tokens.end(), eos) - full.tokens.begin());
  GenerationOptions o;
  o.max_new_tokens = 40;
  Generated g = run(o, {5, eos});  // a list, as generation_config.json may give
  EXPECT_EQ(g.stop_reason, "eos");
  EXPECT_EQ(g.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + first));
  EXPECT_EQ(g.text, completion_text(*m.tok, bos(), g.tokens));
  o.ignore_eos = true;
  g = run(o, {eos});
  EXPECT_EQ(g.stop_reason, "length");
  EXPECT_EQ(g.tokens, full.tokens);
}

TEST_F(StopTest, MaxNewTokensAndContextEndGeneration) {
  GenerationOptions o;
  o.max_new_tokens = 0;
  Generated g = run(o);
  EXPECT_TRUE(g.tokens.empty());
  EXPECT_EQ(g.stop_reason, "length");
  // stories260K's context is 512: a 510-token prompt leaves room for 2 new tokens.
  std::vector<int32_t> long_prompt = bos();
  for (int i = 1; i < 510; ++i) long_prompt.push_back(300 + i % 100);
  Generator gen(*m.model, *m.be, m.tok.get());
  o.max_new_tokens = 10;
  o.ignore_eos = true;
  g = gen.generate({long_prompt}, o)[0];
  EXPECT_EQ(g.tokens.size(), 2u);
  EXPECT_EQ(g.stop_reason, "length");
  long_prompt.resize(512, 300);
  try {
    gen.generate({long_prompt}, o);
    ADD_FAILURE() << "a prompt as long as the context was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_position_embeddings"), std::string::npos) << e.what();
  }
  EXPECT_THROW(gen.generate({{}}, o), Error);  // an empty prompt
}

TEST_F(StopTest, StreamedTextIsAlwaysAPrefixOfTheFinalText) {
  for (const std::vector<std::string>& stops :
       {std::vector<std::string>{}, std::vector<std::string>{"park"},
        std::vector<std::string>{"little girl named Lucy"}}) {
    GenerationOptions o;
    o.max_new_tokens = 60;
    o.stop_strings = stops;
    Generator g(*m.model, *m.be, m.tok.get());
    TextStream ts(*m.tok, bos(), stops);
    std::string shown;
    std::vector<std::string> snapshots;
    const Generated out = g.generate({bos()}, o, [&](size_t, int32_t t) {
      shown += ts.push(t);
      snapshots.push_back(shown);
    })[0];
    for (const std::string& s : snapshots)
      EXPECT_EQ(out.text.substr(0, s.size()), s) << "shown early: " << s;
    shown += ts.finish(out.text);
    EXPECT_EQ(shown, out.text);
  }
}

TEST(TextStream, HoldsBackBytesOfAnUnfinishedCharacter) {
  // Llama 2 has no token for these characters: byte-fallback tokens spell them, and a
  // character's first bytes alone decode to U+FFFD.
  LATHE_TOKENIZER_OR_SKIP(tok, "llama2-model");
  const std::string text = "smile \xF0\x9F\x99\x82 and \xE2\x9C\x93 done";
  const std::vector<int32_t> ids = tok->encode(text, false);
  TextStream ts(*tok, {tok->bos_id()}, {});
  std::string shown;
  for (int32_t id : ids) {
    shown += ts.push(id);
    EXPECT_EQ(shown.find("\xEF\xBF\xBD"), std::string::npos) << shown;
  }
  shown += ts.finish(text);
  EXPECT_EQ(shown, text);
}

}  // namespace
}  // namespace lathe
