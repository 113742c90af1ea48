// Every kernel's ISA variants (baseline, AVX2, AVX-512: each compiled from the same source
// with a different -march) agree with each other on the same random inputs, on every
// level this CPU can run. Exact where the kernel only moves or rounds bits; within a few
// ulps of accumulated error where FMA contraction and vector widths change the order of
// additions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "core/cpu_isa.h"
#include "kernels/cpu/kernel_list.h"

namespace lathe {
namespace {

using namespace lathe::cpu;

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// Runs `run(isa)` for every level the CPU supports and compares each output with the
// baseline's: relative max-abs difference at most tol (0 = bit for bit).
void expect_variants_agree(const char* what, const std::function<std::vector<float>(CpuIsa)>& run,
                           double tol) {
  const std::vector<float> base = run(CpuIsa::Baseline);
  double scale = 0;
  for (float x : base) scale = std::max(scale, double(std::fabs(x)));
  ASSERT_GT(scale, 0.0) << what << ": the baseline output is all zeros";
  for (CpuIsa isa : {CpuIsa::Avx2, CpuIsa::Avx512}) {
    if (isa > cpu_isa_detected()) continue;
    const std::vector<float> got = run(isa);
    ASSERT_EQ(got.size(), base.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, double(std::fabs(got[i] - base[i])));
    EXPECT_LE(worst / scale, tol) << what << " on " << cpu_isa_name(isa);
    std::printf("[ reached ] %s %s vs baseline: %.2e\n", what, cpu_isa_name(isa), worst / scale);
  }
}

#define LATHE_CALL(isa, name, ...)                       \
  (isa == CpuIsa::Avx512 ? isa_avx512::name(__VA_ARGS__) \
   : isa == CpuIsa::Avx2 ? isa_avx2::name(__VA_ARGS__)   \
                         : isa_baseline::name(__VA_ARGS__))

TEST(IsaVariants, RmsnormSwigluRopeAgree) {
  const int64_t M = 37, C = 96, I = 80, H = 4, D = 24;
  const std::vector<float> x = randn(static_cast<size_t>(M * C), 1),
                           w = randn(static_cast<size_t>(C), 2),
                           g = randn(static_cast<size_t>(M * C), 3),
                           gu = randn(static_cast<size_t>(M * 2 * I), 4),
                           dh = randn(static_cast<size_t>(M * I), 5);
  expect_variants_agree(
      "rmsnorm forward+backward",
      [&](CpuIsa isa) {
        std::vector<float> out(x.size()), rstd(static_cast<size_t>(M)), dx(x.size(), 0.5f),
            dw(static_cast<size_t>(C), 0.25f);
        LATHE_CALL(isa, rmsnorm_forward, out.data(), rstd.data(), x.data(), w.data(), M, C, 1e-5f);
        LATHE_CALL(isa, rmsnorm_backward, dx.data(), dw.data(), g.data(), x.data(), w.data(),
                   rstd.data(), M, C);
        out.insert(out.end(), dx.begin(), dx.end());
        out.insert(out.end(), dw.begin(), dw.end());
        return out;
      },
      1e-5);
  expect_variants_agree(
      "swiglu forward+backward",
      [&](CpuIsa isa) {
        std::vector<float> h(static_cast<size_t>(M * I)), dgu(gu.size());
        LATHE_CALL(isa, swiglu_forward, h.data(), gu.data(), M, I);
        LATHE_CALL(isa, swiglu_backward, dgu.data(), dh.data(), gu.data(), M, I);
        h.insert(h.end(), dgu.begin(), dgu.end());
        return h;
      },
      1e-5);
  std::vector<int32_t> pos(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) pos[static_cast<size_t>(m)] = int32_t((m * 7) % 50);
  std::vector<float> cos_sin(static_cast<size_t>(64 * D));
  for (int64_t p = 0; p < 64; ++p)
    for (int64_t i = 0; i < D / 2; ++i) {
      const double a = double(p) * std::pow(10000.0, -2.0 * double(i) / double(D));
      cos_sin[static_cast<size_t>(p * D + 2 * i)] = float(std::cos(a));
      cos_sin[static_cast<size_t>(p * D + 2 * i + 1)] = float(std::sin(a));
    }
  const std::vector<float> q = randn(static_cast<size_t>(M * H * D), 6);
  expect_variants_agree(
      "rope forward+inverse",
      [&](CpuIsa isa) {
        std::vector<float> a = q, b = q;
        LATHE_CALL(isa, rope_apply, a.data(), pos.data(), cos_sin.data(), M, H, D, H * D, false);
        LATHE_CALL(isa, rope_apply, b.data(), pos.data(), cos_sin.data(), M, H, D, H * D, true);
        a.insert(a.end(), b.begin(), b.end());
        return a;
      },
      1e-6);
}

TEST(IsaVariants, AttentionAgrees) {
  const int64_t B = 2, T = 45, H = 4, KV = 2, D = 16, S = (H + 2 * KV) * D;
  const std::vector<float> qkv = randn(static_cast<size_t>(B * T * S), 7),
                           dout = randn(static_cast<size_t>(B * T * H * D), 8);
  std::vector<int32_t> ds(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      ds[static_cast<size_t>(b * T + t)] = t < 20 ? 0 : 20;  // two documents
  const AttentionArgs a{B, T, H, KV, D, ds.data()};
  expect_variants_agree(
      "attention forward+backward",
      [&](CpuIsa isa) {
        std::vector<float> out(static_cast<size_t>(B * T * H * D)),
            lse(static_cast<size_t>(B * T * H)), dqkv(qkv.size());
        LATHE_CALL(isa, attention_forward, out.data(), lse.data(), qkv.data(), a);
        LATHE_CALL(isa, attention_backward, dqkv.data(), dout.data(), out.data(), lse.data(),
                   qkv.data(), a);
        out.insert(out.end(), dqkv.begin(), dqkv.end());
        return out;
      },
      1e-5);
}

TEST(IsaVariants, LossOptimizerAndReductionsAgree) {
  const int64_t M = 9, V = 1000;
  const std::vector<float> logits = randn(static_cast<size_t>(M * V), 9, 3.0f);
  std::vector<int32_t> targets(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m)
    targets[static_cast<size_t>(m)] = m == 4 ? -100 : int32_t((m * 131) % V);
  expect_variants_agree(
      "softmax cross-entropy",
      [&](CpuIsa isa) {
        std::vector<float> l = logits;
        const double loss =
            LATHE_CALL(isa, softmax_cross_entropy, l.data(), targets.data(), M, V, 0.125f);
        l.push_back(float(loss));
        return l;
      },
      1e-5);
  const size_t n = 5003;
  const std::vector<float> p = randn(n, 10), gr = randn(n, 11), m0 = randn(n, 12, 0.1f);
  std::vector<float> v0 = randn(n, 13, 0.1f);
  for (float& x : v0) x = x * x;
  expect_variants_agree(
      "adamw",
      [&](CpuIsa isa) {
        std::vector<float> pp = p, m = m0, v = v0, rounded(n);
        std::vector<uint16_t> bits(n);
        AdamWArgs a;
        a.lr = 1e-3f, a.weight_decay = 0.01f, a.step = 3, a.grad_scale = 0.7f;
        LATHE_CALL(isa, adamw_step, pp.data(), gr.data(), m.data(), v.data(), rounded.data(),
                   bits.data(), n, a);
        pp.insert(pp.end(), m.begin(), m.end());
        pp.insert(pp.end(), v.begin(), v.end());
        // Not `rounded`: p one ulp apart (FMA) may round to neighbouring bf16 values.
        return pp;
      },
      1e-6);
  expect_variants_agree(
      "sum of squares",
      [&](CpuIsa isa) {
        return std::vector<float>{float(LATHE_CALL(isa, sum_squares, p.data(), n))};
      },
      1e-6);
}

TEST(IsaVariants, BitExactKernelsAgreeExactly) {
  const size_t n = 4099;
  const std::vector<float> x = randn(n, 14);
  expect_variants_agree(
      "round_to_bf16, pack_bf16, dequantize_bf16",
      [&](CpuIsa isa) {
        std::vector<float> r = x, wide(n);
        std::vector<uint16_t> bits(n);
        LATHE_CALL(isa, round_to_bf16, r.data(), n);
        LATHE_CALL(isa, pack_bf16, bits.data(), x.data(), 1, int64_t(n), int64_t(n));
        LATHE_CALL(isa, dequantize_bf16, wide.data(), bits.data(), n);
        r.insert(r.end(), wide.begin(), wide.end());
        return r;
      },
      0.0);
  std::vector<uint8_t> codes(n / 2 + 1);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = uint8_t((i * 37 + 11) & 0xff);
  const std::vector<float> absmax = randn(n / 64 + 1, 15);
  expect_variants_agree(
      "dequantize_nf4",
      [&](CpuIsa isa) {
        std::vector<float> out(n);
        LATHE_CALL(isa, dequantize_nf4, out.data(), codes.data(), absmax.data(), n, 64);
        return out;
      },
      0.0);
  // The same mask on every level; accumulating may contract x·scale + out into an FMA.
  expect_variants_agree(
      "dropout",
      [&](CpuIsa isa) {
        std::vector<float> drop(n, 1.0f);
        LATHE_CALL(isa, dropout, drop.data(), x.data(), n, 0.25f, 1234, true);
        return drop;
      },
      1e-6);
}

}  // namespace
}  // namespace lathe
