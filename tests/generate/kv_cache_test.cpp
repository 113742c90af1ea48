// The KV-cache forward (prefill, then one token per step, several sequences per call)
// against LlamaModel::forward over the whole sequence: logits within 1e-5 relative.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "generate/decoder.h"
#include "generate/generate_test_util.h"

namespace lathe {
namespace {

using testing::rel_error;

// Logits [T, V] of a whole sequence, the training forward's way.
std::vector<float> full_logits(LlamaModel& model, const std::vector<int32_t>& ids) {
  Batch b;
  b.B = 1, b.T = int64_t(ids.size());
  b.input_ids = ids;
  b.targets.assign(ids.size(), -100);
  std::vector<float> logits(ids.size() * size_t(model.config().vocab_size));
  model.forward(b, logits.data());
  return logits;
}

std::vector<int32_t> random_ids(int64_t n, int64_t V, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(3, int32_t(V - 1));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& x : ids) x = d(rng);
  return ids;
}

// Two sequences of different lengths share the cache (slots 1 and 0): each is prefilled
// with every row's logits asked for, then both decode one token per call together.
void check_prefill_then_decode(LlamaModel& model, Backend& be, double tol, const char* what) {
  const int64_t V = model.config().vocab_size;
  const std::vector<int32_t> a = random_ids(40, V, 1), b = random_ids(29, V, 2);
  const std::vector<float> ref_a = full_logits(model, a), ref_b = full_logits(model, b);
  const int64_t prompt_a = 13, prompt_b = 5;
  Decoder dec(model, be, 2, 64);
  double worst = 0;
  auto compare = [&](const float* got, const std::vector<float>& ref, int64_t row,
                     const char* seq) {
    const double err = rel_error(got, ref.data() + row * V, size_t(V));
    EXPECT_LT(err, tol) << what << ": sequence " << seq << " position " << row;
    worst = std::max(worst, err);
  };
  // Prefill both prompts in one call; logits of every prompt row.
  std::vector<int32_t> ids, slot, pos;
  std::vector<int64_t> rows;
  for (int64_t j = 0; j < prompt_a; ++j)
    ids.push_back(a[j]), slot.push_back(1), pos.push_back(int32_t(j));
  for (int64_t j = 0; j < prompt_b; ++j)
    ids.push_back(b[j]), slot.push_back(0), pos.push_back(int32_t(j));
  for (int64_t r = 0; r < int64_t(ids.size()); ++r) rows.push_back(r);
  std::vector<float> logits(rows.size() * size_t(V));
  dec.forward(ids.data(), slot.data(), pos.data(), int64_t(ids.size()), rows, logits.data());
  for (int64_t j = 0; j < prompt_a; ++j) compare(logits.data() + j * V, ref_a, j, "a");
  for (int64_t j = 0; j < prompt_b; ++j) compare(logits.data() + (prompt_a + j) * V, ref_b, j, "b");
  // Decode: one row per sequence per call, until b ends; then a alone.
  for (int64_t t = 0; prompt_a + t < int64_t(a.size()); ++t) {
    const int64_t pa = prompt_a + t, pb = prompt_b + t;
    ids = {a[size_t(pa)]}, slot = {1}, pos = {int32_t(pa)};
    if (pb < int64_t(b.size()))
      ids.push_back(b[size_t(pb)]), slot.push_back(0), pos.push_back(int32_t(pb));
    rows.clear();
    for (int64_t r = 0; r < int64_t(ids.size()); ++r) rows.push_back(r);
    dec.forward(ids.data(), slot.data(), pos.data(), int64_t(ids.size()), rows, logits.data());
    compare(logits.data(), ref_a, pa, "a");
    if (ids.size() == 2) compare(logits.data() + V, ref_b, pb, "b");
  }
  std::printf("[ reached  ] %s: worst logits rel error %.2e\n", what, worst);
}

TEST(KvCache, PrefillAndDecodeMatchFullForwardFp32) {
  gen_test::LoadedModel& m = gen_test::stories();
  check_prefill_then_decode(*m.model, *m.be, 1e-5, "stories260K fp32");
}

TEST(KvCache, PrefillAndDecodeMatchFullForwardGqaUntied) {
  LATHE_REQUIRE_GENERATE_GOLDEN();
  gen_test::LoadedModel m =
      gen_test::load_model(gen_test::golden_generate_dir() + "/model", Precision::FP32, false);
  check_prefill_then_decode(*m.model, *m.be, 1e-5, "random GQA untied fp32");
}

TEST(KvCache, Bf16MatchesBf16FullForward) {
  // Same rounding points as the training forward; products of different row counts may
  // still round a value to the neighbouring bf16 number, hence the looser bound.
  gen_test::LoadedModel m = gen_test::load_model(gen_test::stories_dir(), Precision::BF16, false);
  check_prefill_then_decode(*m.model, *m.be, 2e-2, "stories260K bf16");
  // And bf16 is really in effect: its logits are not fp32's.
  const std::vector<int32_t> ids = random_ids(20, 512, 9);
  const std::vector<float> bf16 = full_logits(*m.model, ids);
  const std::vector<float> fp32 = full_logits(*gen_test::stories().model, ids);
  EXPECT_GT(rel_error(bf16.data(), fp32.data(), fp32.size()), 1e-4);
}

TEST(KvCache, LongPrefillIsChunkedWithoutChangingLogits) {
  // 2 × 300 rows in one call cross the decoder's 512-row chunk inside the second prompt,
  // whose later rows then read the earlier ones' keys from the cache.
  gen_test::LoadedModel& m = gen_test::stories();
  const int64_t V = m.model->config().vocab_size, n = 300;
  const std::vector<int32_t> a = random_ids(n, V, 3), b = random_ids(n, V, 4);
  const std::vector<float> ref_a = full_logits(*m.model, a), ref_b = full_logits(*m.model, b);
  Decoder dec(*m.model, *m.be, 2, n);
  std::vector<int32_t> ids, slot, pos;
  for (int64_t j = 0; j < n; ++j) ids.push_back(a[j]), slot.push_back(0), pos.push_back(int32_t(j));
  for (int64_t j = 0; j < n; ++j) ids.push_back(b[j]), slot.push_back(1), pos.push_back(int32_t(j));
  const std::vector<int64_t> rows = {0, 299, 300, 511, 512, 513, 599};
  std::vector<float> logits(rows.size() * size_t(V));
  dec.forward(ids.data(), slot.data(), pos.data(), 2 * n, rows, logits.data());
  double worst = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::vector<float>& ref = rows[r] < n ? ref_a : ref_b;
    const double err =
        rel_error(logits.data() + r * size_t(V), ref.data() + (rows[r] % n) * V, size_t(V));
    EXPECT_LT(err, 1e-5) << "row " << rows[r];
    worst = std::max(worst, err);
  }
  std::printf("[ reached  ] chunked prefill: worst logits rel error %.2e\n", worst);
}

}  // namespace
}  // namespace lathe
