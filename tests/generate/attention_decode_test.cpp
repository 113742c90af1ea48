// The decode attention kernel against a double-precision softmax over each row's visible
// keys: rows of several slots at scattered positions, GQA, and a prefill's causal rows.
#include "kernels/cpu/attention_decode.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace lathe {
namespace {

TEST(AttentionDecode, MatchesDoublePrecisionReference) {
  const int64_t H = 6, KV = 2, D = 24, cap = 40, slots = 3, S = (H + 2 * KV) * D;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  // Earlier keys/values already in the cache (random), then one call with: a 7-row prefill
  // of slot 2 (positions 0..6), one decode row of slot 0 at position 30 and one of slot 1
  // at position 0.
  std::vector<float> kc(size_t(slots * KV * cap * D)), vc(kc.size());
  for (auto& x : kc) x = nd(rng);
  for (auto& x : vc) x = nd(rng);
  std::vector<int32_t> slot = {2, 2, 2, 2, 2, 2, 2, 0, 1}, pos = {0, 1, 2, 3, 4, 5, 6, 30, 0};
  const int64_t M = int64_t(slot.size());
  std::vector<float> qkv(size_t(M * S));
  for (auto& x : qkv) x = nd(rng);
  // What the cache must hold after the call: the old contents with the new rows written.
  std::vector<float> k_after = kc, v_after = vc;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < KV; ++g)
      for (int64_t d = 0; d < D; ++d) {
        const size_t at = size_t(((slot[m] * KV + g) * cap + pos[m]) * D + d);
        k_after[at] = qkv[size_t(m * S + (H + g) * D + d)];
        v_after[at] = qkv[size_t(m * S + (H + KV + g) * D + d)];
      }
  std::vector<float> out(size_t(M * H * D));
  AttentionDecodeArgs a;
  a.M = M, a.H = H, a.KV = KV, a.D = D, a.capacity = cap, a.slot = slot.data(), a.pos = pos.data();
  cpu::attention_decode(out.data(), qkv.data(), kc.data(), vc.data(), a);
  EXPECT_EQ(kc, k_after);
  EXPECT_EQ(vc, v_after);

  double worst = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / KV), n = pos[m] + 1;
      const float* K = k_after.data() + (slot[m] * KV + g) * cap * D;
      const float* V = v_after.data() + (slot[m] * KV + g) * cap * D;
      std::vector<double> s(static_cast<size_t>(n));
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d)
          dot += double(qkv[size_t(m * S + h * D + d)]) * K[j * D + d];
        s[size_t(j)] = dot / std::sqrt(double(D));
        mx = std::max(mx, s[size_t(j)]);
      }
      for (auto& x : s) sum += x = std::exp(x - mx);
      for (int64_t d = 0; d < D; ++d) {
        double o = 0;
        for (int64_t j = 0; j < n; ++j) o += s[size_t(j)] * V[j * D + d];
        worst = std::max(worst, std::fabs(o / sum - out[size_t(m * H * D + h * D + d)]));
      }
    }
  EXPECT_LT(worst, 1e-5);
  std::printf("[ reached  ] max abs error %.2e\n", worst);
}

}  // namespace
}  // namespace lathe
