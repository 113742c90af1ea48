// Greedy generation through the KV cache against the PyTorch reference, which recomputes
// the whole sequence for every token: token for token, for each prompt alone and for all
// prompts batched together (different lengths, slots refilled as sequences finish).
#include <gtest/gtest.h>

#include <algorithm>

#include "generate/generate_test_util.h"
#include "generate/generator.h"

namespace lathe {
namespace {

using gen_test::json_ids;

class GreedyGeneration : public ::testing::Test {
 protected:
  void SetUp() override {
    LATHE_REQUIRE_GENERATE_GOLDEN();
    const nlohmann::json e = testing::read_json(gen_test::golden_generate_dir() + "/expected.json");
    prompts_ = json_ids(e.at("prompts"));
    expected_ = json_ids(e.at("greedy"));
    new_tokens_ = e.at("max_new_tokens");
    m_ = gen_test::load_model(gen_test::golden_generate_dir() + "/model", Precision::FP32, false);
  }
  std::vector<Generated> run(const std::vector<std::vector<int32_t>>& prompts, int batch,
                             std::vector<int32_t> stop_tokens = {}) {
    Generator g(*m_.model, *m_.be, nullptr);
    GenerationOptions o;
    o.max_new_tokens = new_tokens_;
    o.batch_size = batch;
    o.stop_tokens = std::move(stop_tokens);
    o.seed = uint64_t(batch) * 7919;  // greedy: the seed must not matter
    return g.generate(prompts, o);
  }
  std::vector<std::vector<int32_t>> prompts_, expected_;
  int new_tokens_ = 0;
  gen_test::LoadedModel m_;
};

TEST_F(GreedyGeneration, EachPromptAloneMatchesReference) {
  ASSERT_EQ(prompts_.size(), 5u);
  for (size_t i = 0; i < prompts_.size(); ++i) {
    const std::vector<Generated> out = run({prompts_[i]}, 1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].tokens, expected_[i])
        << "prompt " << i << " (" << prompts_[i].size() << " tokens)";
    EXPECT_EQ(out[0].stop_reason, "length");
    EXPECT_TRUE(out[0].text.empty());  // no tokenizer
  }
}

TEST_F(GreedyGeneration, BatchingDoesNotChangeTheResult) {
  // 2 and 3 slots: prompts wait and take the slot of a finished sequence; 8: all at once.
  for (int batch : {2, 3, 8}) {
    const std::vector<Generated> out = run(prompts_, batch);
    ASSERT_EQ(out.size(), prompts_.size());
    for (size_t i = 0; i < out.size(); ++i)
      EXPECT_EQ(out[i].tokens, expected_[i]) << "prompt " << i << ", batch size " << batch;
  }
}

TEST_F(GreedyGeneration, StopTokenEndsOnlyItsSequence) {
  // A token of prompt 1's continuation: every sequence stops at its first occurrence (not
  // kept), at a different step each, while the others keep decoding in the same batch.
  const int32_t stop = expected_[1][20];
  const std::vector<Generated> out = run(prompts_, 8, {stop});
  int stopped = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const auto it = std::find(expected_[i].begin(), expected_[i].end(), stop);
    const std::vector<int32_t> want(expected_[i].begin(), it);
    EXPECT_EQ(out[i].tokens, want) << "prompt " << i;
    EXPECT_EQ(out[i].stop_reason, it == expected_[i].end() ? "length" : "stop_token");
    stopped += it != expected_[i].end();
  }
  EXPECT_GE(stopped, 1);
  EXPECT_LT(stopped, int(out.size())) << "pick a stop token that leaves some sequences running";
}

TEST_F(GreedyGeneration, OnTokenSeesEveryTokenInOrder) {
  Generator g(*m_.model, *m_.be, nullptr);
  GenerationOptions o;
  o.max_new_tokens = new_tokens_;
  o.batch_size = 3;
  std::vector<std::vector<int32_t>> streamed(prompts_.size());
  const std::vector<Generated> out =
      g.generate(prompts_, o, [&](size_t i, int32_t t) { streamed[i].push_back(t); });
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(streamed[i], out[i].tokens);
  const GenerationStats& s = g.stats();
  int64_t prompt_tokens = 0;
  for (const auto& p : prompts_) prompt_tokens += int64_t(p.size());
  EXPECT_EQ(s.prefill_tokens, prompt_tokens);
  // The first token of each sequence comes from its prefill, the rest from decode steps.
  EXPECT_EQ(s.decode_tokens, int64_t(prompts_.size()) * (new_tokens_ - 1));
}

}  // namespace
}  // namespace lathe
