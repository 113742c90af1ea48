// The server's scheduler on stories260K: greedy sequences batched continuously (joining
// and leaving between steps, prompts prefilled in chunks) equal the offline Generator's;
// prompt log-probabilities equal the full forward pass's; cancelled sequences free their
// slot; the waiting room is bounded; LoRA adapters of one batch apply per row.
#include "serve/scheduler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "backend/host_staging.h"
#include "data/batch.h"
#include "generate/generate_test_util.h"
#include "generate/generator.h"
#include "generate/lora_bank.h"
#include "io/peft_adapter.h"
#include "model/lora.h"

namespace lathe {
namespace {

using namespace std::chrono_literals;

struct Result {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> prompt, logprobs;
  std::string reason, error;
};

// Collects a sequence's updates until it finishes.
Result collect(SeqHandle& h) {
  Result r;
  uint64_t seen = 0;
  for (int i = 0; i < 6000; ++i) {
    seen = h.signal().wait(seen, 100ms);
    SeqUpdate u = h.take();
    if (!u.prompt.empty()) r.prompt = u.prompt;
    for (const TokenLogprob& t : u.tokens) {
      r.tokens.push_back(t.id);
      r.logprobs.push_back(t);
    }
    if (u.finished) {
      r.reason = u.finish_reason;
      r.error = u.error;
      return r;
    }
  }
  ADD_FAILURE() << "the sequence did not finish within 10 minutes";
  return r;
}

class SchedulerTest : public ::testing::Test {
 protected:
  gen_test::LoadedModel& m = gen_test::stories();
  std::vector<std::vector<int32_t>> prompts() const {
    std::vector<std::vector<int32_t>> p;
    for (const char* text : {"Once upon a time", "The cat", "Lily and Ben went to the park to play",
                             "One day", "Tom had a big red ball. He"})
      p.push_back(m.tok->encode(text, true));
    p.push_back({m.tok->bos_id()});
    return p;
  }
  SeqSpec greedy(std::vector<int32_t> prompt, int64_t max_tokens) const {
    SeqSpec s;
    s.prompt = std::move(prompt);
    s.max_tokens = max_tokens;
    s.sampling.temperature = 0;
    return s;
  }
};

TEST_F(SchedulerTest, GreedyBatchedContinuouslyEqualsTheGenerator) {
  const auto ps = prompts();
  Generator g(*m.model, *m.be, m.tok.get());
  GenerationOptions o;
  o.max_new_tokens = 48;
  o.batch_size = 1;
  const std::vector<Generated> expected = g.generate(ps, o);

  // 3 slots for 6 prompts and 5-token prefill chunks: sequences wait, join a running batch
  // mid-way and prefill over several steps while others decode.
  SchedulerOptions so;
  so.slots = 3;
  so.step_tokens = 5;
  Scheduler s(*m.model, *m.be, nullptr, so, {m.tok->eos_id()});
  std::vector<SeqSpec> specs;
  for (const auto& p : ps) specs.push_back(greedy(p, 48));
  auto handles = s.submit(specs);
  ASSERT_TRUE(handles);
  for (size_t i = 0; i < ps.size(); ++i) {
    const Result r = collect(*(*handles)[i]);
    EXPECT_EQ(r.tokens, expected[i].tokens) << "prompt " << i;
    EXPECT_EQ(r.reason, expected[i].stop_reason == "length" ? "length" : "stop") << "prompt " << i;
  }
  // Staggered: each prompt submitted while the previous ones decode.
  std::vector<std::shared_ptr<SeqHandle>> late;
  for (size_t i = 0; i < ps.size(); ++i) {
    auto h = s.submit({greedy(ps[i], 48)});
    ASSERT_TRUE(h);
    late.push_back((*h)[0]);
    std::this_thread::sleep_for(5ms);
  }
  for (size_t i = 0; i < ps.size(); ++i)
    EXPECT_EQ(collect(*late[i]).tokens, expected[i].tokens) << "staggered prompt " << i;
}

TEST_F(SchedulerTest, PromptLogprobsEqualTheFullForward) {
  const std::vector<int32_t> prompt = m.tok->encode("Lily and Ben went to the park to play", true);
  const int64_t T = int64_t(prompt.size()), V = m.model->config().vocab_size;
  Batch b;
  b.B = 1, b.T = T;
  b.input_ids = prompt;
  b.targets.assign(size_t(T), -100);
  for (int32_t t = 0; t < T; ++t) b.positions.push_back(t), b.doc_start.push_back(0);
  std::vector<float> logits(size_t(T * V));
  m.model->forward(b, logits.data());

  SchedulerOptions so;
  so.step_tokens = 3;  // the prompt's log-probabilities come from several chunks
  Scheduler s(*m.model, *m.be, nullptr, so, {m.tok->eos_id()});
  SeqSpec spec = greedy(prompt, 1);
  spec.prompt_logprobs = true;
  spec.logprobs = 2;
  const Result r = collect(*(*s.submit({spec}))[0]);
  ASSERT_EQ(int64_t(r.prompt.size()), T - 1);
  for (int64_t p = 0; p + 1 < T; ++p) {
    const float* z = logits.data() + p * V;
    double mx = z[0], sum = 0;
    for (int64_t v = 1; v < V; ++v) mx = std::max<double>(mx, z[v]);
    for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - mx);
    const double want = z[prompt[size_t(p + 1)]] - mx - std::log(sum);
    EXPECT_EQ(r.prompt[size_t(p)].id, prompt[size_t(p + 1)]);
    EXPECT_NEAR(r.prompt[size_t(p)].logprob, want, 1e-4) << "position " << p + 1;
    ASSERT_EQ(r.prompt[size_t(p)].top.size(), 2u);
    EXPECT_GE(r.prompt[size_t(p)].top[0].second, r.prompt[size_t(p)].top[1].second);
  }
  // The generated token's log-probability is the top one (greedy).
  ASSERT_EQ(r.logprobs.size(), 1u);
  EXPECT_EQ(r.logprobs[0].id, r.logprobs[0].top[0].first);
  EXPECT_FLOAT_EQ(r.logprobs[0].logprob, r.logprobs[0].top[0].second);
}

TEST_F(SchedulerTest, MaxTokensZeroScoresThePromptOnly) {
  Scheduler s(*m.model, *m.be, nullptr, {}, {m.tok->eos_id()});
  SeqSpec spec = greedy(m.tok->encode("The cat", true), 0);
  Result r = collect(*(*s.submit({spec}))[0]);
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.reason, "length");
  spec.prompt_logprobs = true;
  spec.logprobs = 0;
  r = collect(*(*s.submit({spec}))[0]);
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.prompt.size(), spec.prompt.size() - 1);
}

TEST_F(SchedulerTest, CancelFreesTheSlotAndTheQueueIsBounded) {
  SchedulerOptions so;
  so.slots = 1;
  so.max_waiting = 1;
  Scheduler s(*m.model, *m.be, nullptr, so, {m.tok->eos_id()});
  SeqSpec endless = greedy({m.tok->bos_id()}, 400);
  endless.ignore_eos = true;
  auto a = s.submit({endless});
  auto b = s.submit({greedy(m.tok->encode("One day", true), 5)});
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(s.submit({greedy({m.tok->bos_id()}, 5)}));  // 1 running + 1 waiting: full
  std::this_thread::sleep_for(50ms);
  (*a)[0]->cancel();
  const Result rb = collect(*(*b)[0]);
  EXPECT_EQ(rb.tokens.size(), 5u);
  EXPECT_EQ(collect(*(*a)[0]).reason, "cancelled");
  EXPECT_TRUE(s.submit({greedy({m.tok->bos_id()}, 1)}));  // room again
}

TEST_F(SchedulerTest, SeededSamplingIsReproducibleAndIndependentOfTheBatch) {
  SeqSpec spec = greedy(m.tok->encode("Once upon a time", true), 30);
  spec.sampling.temperature = 1.0f;
  spec.sampling.top_p = 0.9f;
  spec.seed = 1234;
  SchedulerOptions one;
  one.slots = 1;
  Scheduler alone(*m.model, *m.be, nullptr, one, {m.tok->eos_id()});
  const Result a = collect(*(*alone.submit({spec}))[0]);
  Scheduler batched(*m.model, *m.be, nullptr, {}, {m.tok->eos_id()});
  SeqSpec other = spec;
  other.seed = 99;
  auto hs = batched.submit({other, spec, other});
  ASSERT_TRUE(hs);
  EXPECT_EQ(collect(*(*hs)[1]).tokens, a.tokens);
}

// A PEFT adapter with random A and B (B = 0 would change nothing) on every projection.
std::string write_random_adapter(const LlamaConfig& cfg, const std::string& dir, uint64_t seed) {
  LoraSpec spec;
  spec.r = 4;
  spec.alpha = 8;
  spec.targets = parse_lora_targets({"all-linear"});
  const LoraTable t = make_lora_table(cfg, spec);
  std::vector<float> w(t.total);
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> nd(0.0f, 0.3f);
  for (float& x : w) x = nd(gen);
  save_peft_adapter(dir, t, w.data(), DType::F32, "stories260K");
  return dir;
}

TEST_F(SchedulerTest, LoraAdaptersApplyPerRowInOneBatch) {
  const LlamaConfig& cfg = m.model->config();
  const std::string root =
      (std::filesystem::temp_directory_path() / ("lathe_serve_lora_" + std::to_string(::getpid())))
          .string();
  const std::string a1 = write_random_adapter(cfg, root + "/a1", 1);
  const std::string a2 = write_random_adapter(cfg, root + "/a2", 2);
  const auto ps = prompts();

  // The reference: the model loaded with each adapter, as `lathe generate --adapter` does.
  auto with_adapter = [&](const std::string& dir) {
    AdapterSetup a;
    a.lora = read_peft_config(dir);
    a.base_dtype = BaseDtype::F32;
    LlamaModel model(cfg, *m.be, Precision::FP32, false, &a);
    model.load(SafetensorsModel(gen_test::stories_dir()));
    {
      HostWrite<float> lw(*m.be, model.lora_params(), model.lora_table().total);
      load_peft_weights(dir, model.lora_table(), lw.get());
      lw.commit();
    }
    model.refresh_compute_weights();
    Generator g(model, *m.be, m.tok.get());
    GenerationOptions o;
    o.max_new_tokens = 24;
    return g.generate(ps, o);
  };
  const std::vector<Generated> ref1 = with_adapter(a1), ref2 = with_adapter(a2);
  Generator g(*m.model, *m.be, m.tok.get());
  GenerationOptions o;
  o.max_new_tokens = 24;
  const std::vector<Generated> ref0 = g.generate(ps, o);
  ASSERT_NE(ref1[0].tokens, ref0[0].tokens) << "the adapter should change the output";

  LoraBank bank(*m.model, *m.be);
  EXPECT_EQ(bank.add("one", a1), 0);
  EXPECT_EQ(bank.add("two", a2), 1);
  SchedulerOptions so;
  so.slots = 8;
  so.step_tokens = 7;
  Scheduler s(*m.model, *m.be, &bank, so, {m.tok->eos_id()});
  std::vector<SeqSpec> specs;
  for (size_t i = 0; i < ps.size(); ++i)
    for (int adapter : {-1, 0, 1}) {
      SeqSpec sp = greedy(ps[i], 24);
      sp.adapter = adapter;
      specs.push_back(sp);
    }
  auto hs = s.submit(specs);
  ASSERT_TRUE(hs);
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(collect(*(*hs)[3 * i]).tokens, ref0[i].tokens) << "base, prompt " << i;
    EXPECT_EQ(collect(*(*hs)[3 * i + 1]).tokens, ref1[i].tokens) << "adapter one, prompt " << i;
    EXPECT_EQ(collect(*(*hs)[3 * i + 2]).tokens, ref2[i].tokens) << "adapter two, prompt " << i;
  }
  std::filesystem::remove_all(root);
}

TEST(TokenLogprob, LogSoftmaxAndTop) {
  const float z[4] = {1.0f, 3.0f, 3.0f, -2.0f};
  const TokenLogprob t = token_logprob(z, 4, 0, 3);
  const double lse = std::log(std::exp(1.0) + 2 * std::exp(3.0) + std::exp(-2.0));
  EXPECT_NEAR(t.logprob, 1.0 - lse, 1e-6);
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].first, 1);  // ties by id
  EXPECT_EQ(t.top[1].first, 2);
  EXPECT_EQ(t.top[2].first, 0);
}

}  // namespace
}  // namespace lathe
