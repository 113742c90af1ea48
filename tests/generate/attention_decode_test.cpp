// The CPU decoding attention, in each ISA variant this CPU runs (baseline, AVX2, AVX-512:
// the same source at different vector widths), against a direct double-precision
// evaluation of softmax(q·kᵀ/√D)·v over the cache: heads of 6 to 128 dims, grouped
// queries, positions on both sides of multiples of the vector widths, and a prompt's rows
// in one call, each of which must see the keys of the rows before it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_isa.h"
#include "kernels/cpu/kernel_list.h"

namespace lathe {
namespace {

using namespace lathe::cpu;

struct Shape {
  int64_t H, KV, D;
};

// out[m, h, :] by the definition, reading the cache after every row's k and v are in.
std::vector<double> reference(const std::vector<float>& qkv, const std::vector<float>& kc,
                              const std::vector<float>& vc, const AttentionDecodeArgs& a) {
  const int64_t H = a.H, KV = a.KV, D = a.D, S = (H + 2 * KV) * D;
  std::vector<double> out(size_t(a.M * H * D));
  for (int64_t m = 0; m < a.M; ++m)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / KV), n = a.pos[m] + 1;
      const int64_t base = (int64_t(a.slot[m]) * KV + g) * a.capacity * D;
      std::vector<double> s(static_cast<size_t>(n));
      double mx = -1e300;
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d)
          dot += double(qkv[m * S + h * D + d]) * kc[base + j * D + d];
        s[j] = dot / std::sqrt(double(D));
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) acc += s[j] * vc[base + j * D + d];
        out[size_t((m * H + h) * D + d)] = acc / sum;
      }
    }
  return out;
}

TEST(AttentionDecode, EveryIsaMatchesTheDefinition) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (Shape sh : {Shape{4, 2, 16}, Shape{8, 4, 64}, Shape{2, 1, 6}, Shape{4, 1, 128},
                   Shape{3, 3, 40}, Shape{2, 2, 8}}) {
    const int64_t slots = 3, cap = 112, S = (sh.H + 2 * sh.KV) * sh.D;
    // Slot 1: a prompt of 19 rows in one call (causal among themselves). Slots 0 and 2:
    // one decode row each, at positions around multiples of 8 and the last one.
    std::vector<int32_t> slot, pos;
    for (int32_t p = 0; p < 19; ++p) slot.push_back(1), pos.push_back(p);
    for (int32_t p : {7, 8, 9, 15, 16, 17, 63, 100, int32_t(cap - 1)})
      slot.push_back(p % 2 ? 0 : 2), pos.push_back(p);
    // Two rows may not share a (slot, pos): keep the first of each.
    for (size_t i = 19; i < slot.size(); ++i)
      for (size_t k = 19; k < i; ++k)
        if (slot[k] == slot[i] && pos[k] == pos[i]) pos[i] = int32_t(cap - 2 - i);
    const int64_t M = int64_t(slot.size());
    std::vector<float> qkv(size_t(M * S));
    for (float& x : qkv) x = nd(rng);
    std::vector<float> kc0(size_t(slots * sh.KV * cap * sh.D)), vc0(kc0.size());
    for (float& x : kc0) x = nd(rng);
    for (float& x : vc0) x = nd(rng);
    const AttentionDecodeArgs a{M, sh.H, sh.KV, sh.D, cap, slot.data(), pos.data()};

    // The cache as the kernel must leave it: every row's k and v at (slot, pos).
    std::vector<float> kc_want = kc0, vc_want = vc0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t g = 0; g < sh.KV; ++g)
        for (int64_t d = 0; d < sh.D; ++d) {
          const size_t at = size_t(((slot[m] * sh.KV + g) * cap + pos[m]) * sh.D + d);
          kc_want[at] = qkv[size_t(m * S + (sh.H + g) * sh.D + d)];
          vc_want[at] = qkv[size_t(m * S + (sh.H + sh.KV + g) * sh.D + d)];
        }
    const std::vector<double> want = reference(qkv, kc_want, vc_want, a);

    for (CpuIsa isa : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512}) {
      if (isa > cpu_isa_detected()) continue;
      std::vector<float> kc = kc0, vc = vc0, out(size_t(M * sh.H * sh.D), 7.0f);
      if (isa == CpuIsa::Avx512)
        isa_avx512::attention_decode(out.data(), qkv.data(), kc.data(), vc.data(), a);
      else if (isa == CpuIsa::Avx2)
        isa_avx2::attention_decode(out.data(), qkv.data(), kc.data(), vc.data(), a);
      else
        isa_baseline::attention_decode(out.data(), qkv.data(), kc.data(), vc.data(), a);
      const std::string at = std::string(cpu_isa_name(isa)) + " H=" + std::to_string(sh.H) +
                             " KV=" + std::to_string(sh.KV) + " D=" + std::to_string(sh.D);
      ASSERT_EQ(kc, kc_want) << at;
      ASSERT_EQ(vc, vc_want) << at;
      double worst = 0;
      for (size_t i = 0; i < out.size(); ++i)
        worst = std::max(worst, std::fabs(double(out[i]) - want[i]));
      EXPECT_LE(worst, 2e-6) << at;  // outputs are averages of N(0,1) values: |out| <= ~4
      std::printf("[ reached  ] %s: max abs error %.2e\n", at.c_str(), worst);
    }
  }
}

}  // namespace
}  // namespace lathe
