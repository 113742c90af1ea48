// The logits processors on hand-made logits (HF transformers' semantics), the sampler's
// distribution, and seeding through the Generator.
#include "generate/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "generate/generate_test_util.h"
#include "generate/generator.h"

namespace lathe {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> z;
  for (double x : p) z.push_back(float(std::log(x)));
  return z;
}

std::vector<bool> kept(const std::vector<float>& z) {
  std::vector<bool> k;
  for (float x : z) k.push_back(x != -kInf);
  return k;
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities 0.15, 0.5, 0.05, 0.3 (out of order on purpose). By hand, most likely
  // first: 0.5 (cum 0.5), 0.3 (0.8), 0.15 (0.95), 0.05 (1.0).
  const std::vector<double> p = {0.15, 0.5, 0.05, 0.3};
  struct Case {
    float top_p;
    std::vector<bool> keep;
  };
  for (const Case& c : {Case{0.9f, {true, true, false, true}},     // 0.95 >= 0.9
                        Case{0.75f, {false, true, false, true}},   // 0.8 >= 0.75
                        Case{0.4f, {false, true, false, false}},   // 0.5 >= 0.4
                        Case{0.01f, {false, true, false, false}},  // at least one token
                        Case{0.99f, {true, true, true, true}}}) {
    std::vector<float> z = log_probs(p);
    apply_top_p(z.data(), 4, c.top_p);
    EXPECT_EQ(kept(z), c.keep) << "top_p " << c.top_p;
    // Kept logits are untouched.
    for (size_t i = 0; i < 4; ++i) {
      if (c.keep[i]) {
        EXPECT_EQ(z[i], float(std::log(p[i])));
      }
    }
  }
}

TEST(Sampling, TopKKeepsTiesAtTheKthValue) {
  std::vector<float> z = {1, 3, 2, 3, 0};
  apply_top_k(z.data(), 5, 2);  // the 2nd largest is 3: both 3s stay
  EXPECT_EQ(kept(z), (std::vector<bool>{false, true, false, true, false}));
  z = {1, 3, 2, 3, 0};
  apply_top_k(z.data(), 5, 3);
  EXPECT_EQ(kept(z), (std::vector<bool>{false, true, true, true, false}));
  z = {1, 3, 2, 3, 0};
  apply_top_k(z.data(), 5, 0);  // off
  apply_top_k(z.data(), 5, 9);  // more than the vocabulary: off
  EXPECT_EQ(kept(z), std::vector<bool>(5, true));
}

TEST(Sampling, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  std::vector<float> z = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f};
  // Ids seen twice are penalized once (HF gathers then scatters); out-of-range ids ignored.
  apply_repetition_penalty(z.data(), 5, {0, 1, 1, 4, 0, 77}, 2.0f);
  EXPECT_EQ(z, (std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f, 0.0f}));
  apply_repetition_penalty(z.data(), 5, {2}, 1.0f);  // off
  EXPECT_EQ(z[2], 0.5f);
}

TEST(Sampling, TemperatureDividesLogits) {
  std::vector<float> z = {1.0f, -2.0f, 4.0f};
  apply_temperature(z.data(), 3, 0.5f);
  EXPECT_EQ(z, (std::vector<float>{2.0f, -4.0f, 8.0f}));
}

TEST(Sampling, ProcessorsRunInHfOrder) {
  // Penalty before temperature before top-k before top-p: the penalty turns token 3 from
  // the most likely into a middle one, so top-k 2 keeps tokens 0 and 2.
  std::vector<float> z = {2.0f, 0.0f, 1.8f, 3.0f};
  SamplingParams p;
  p.temperature = 0.7f, p.top_k = 2, p.repetition_penalty = 2.0f;
  SamplingRng rng(3);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> w = z;
    const int32_t t = sample_next(w.data(), 4, p, {3}, rng);
    EXPECT_TRUE(t == 0 || t == 2) << t;
  }
}

TEST(Sampling, DrawsFollowTheSoftmax) {
  // 200,000 draws: each frequency's standard deviation is below 0.0012; 0.006 is 5 sigma.
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  for (float temperature : {1.0f, 0.5f}) {
    SamplingParams sp;
    sp.temperature = temperature;
    SamplingRng rng(42);
    std::vector<double> count(4, 0);
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
      std::vector<float> z = log_probs(p);
      count[size_t(sample_next(z.data(), 4, sp, {}, rng))] += 1;
    }
    // At temperature T the probabilities become p^(1/T), renormalised.
    double total = 0;
    for (double x : p) total += std::pow(x, 1.0 / temperature);
    for (size_t i = 0; i < 4; ++i)
      EXPECT_NEAR(count[i] / n, std::pow(p[i], 1.0 / temperature) / total, 0.006)
          << "token " << i << " at temperature " << temperature;
  }
}

TEST(Sampling, GreedyIsArgmaxWhateverTheSeed) {
  const std::vector<float> z = {0.5f, 2.0f, -1.0f, 2.0f};
  for (uint64_t seed : {0u, 1u, 99u}) {
    SamplingRng rng(seed);
    std::vector<float> w = z;
    EXPECT_EQ(sample_next(w.data(), 4, SamplingParams{}, {}, rng), 1);  // first of the tie
  }
}

TEST(Sampling, SeedsMakeRunsReproducibleAndIndependentOfBatching) {
  gen_test::LoadedModel& m = gen_test::stories();
  Generator g(*m.model, *m.be, m.tok.get());
  GenerationOptions o;
  o.max_new_tokens = 40;
  o.temperature = 1.0f;
  o.top_p = 0.95f;
  o.ignore_eos = true;
  const std::vector<std::vector<int32_t>> prompts(3, std::vector<int32_t>{m.tok->bos_id()});
  auto run = [&](uint64_t seed, int batch) {
    o.seed = seed;
    o.batch_size = batch;
    std::vector<std::vector<int32_t>> ids;
    for (const Generated& x : g.generate(prompts, o)) ids.push_back(x.tokens);
    return ids;
  };
  const auto a = run(7, 3);
  EXPECT_EQ(a, run(7, 3));
  EXPECT_EQ(a, run(7, 1));  // each sequence has its own stream, whatever the batch
  EXPECT_NE(a, run(8, 3));
  EXPECT_NE(a[0], a[1]);  // identical prompts, different streams
  // Greedy ignores the seed.
  o.temperature = 0;
  EXPECT_EQ(run(1, 3), run(2, 3));
}

TEST(Sampling, BadSettingsAreRefusedWithTheirFlag) {
  auto message = [](SamplingParams p) {
    try {
      validate_sampling(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SamplingParams p;
  p.top_p = 0;
  EXPECT_NE(message(p).find("--top-p"), std::string::npos);
  p = {};
  p.temperature = -1;
  EXPECT_NE(message(p).find("--temperature"), std::string::npos);
  p = {};
  p.repetition_penalty = 0;
  EXPECT_NE(message(p).find("--repetition-penalty"), std::string::npos);
  p = {};
  p.top_k = -2;
  EXPECT_NE(message(p).find("--top-k"), std::string::npos);
  EXPECT_EQ(message(SamplingParams{}), "");
}

}  // namespace
}  // namespace lathe
