// The per-element math the CUDA kernels run (src/kernels/common, compiled here for the
// host) against the CPU kernels, the oracle. These run without a GPU: only the launch
// geometry, shared-memory tiling and warp-level code of src/kernels/cuda are left to a
// machine with one. Each loop below walks the elements as the CUDA kernel's threads do.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/common/elementwise_math.h"
#include "kernels/common/quant_math.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/fd_check.h"
#include "model/nf4.h"

namespace lathe {
namespace {

uint32_t fresh_seed() { return std::random_device{}(); }

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Values that stress bf16 rounding: ties (low 16 bits exactly 0x8000, odd and even),
// NaN with a payload only in the low bits, infinities, subnormals, the largest finite.
std::vector<float> bf16_edge_values(uint32_t seed) {
  std::vector<uint32_t> u = {0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x7f800001u, 0xff800001u,
                             0x7f800000u, 0xff800000u, 0x00000001u, 0x807fffffu, 0x7f7fffffu,
                             0x7f7f8000u, 0x00000000u, 0x80000000u};
  std::mt19937 rng(seed);
  for (int i = 0; i < 100000; ++i) u.push_back(rng());
  std::vector<float> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) std::memcpy(&v[i], &u[i], 4);
  return v;
}

TEST(SharedMath, Bf16ConversionsEqualCoreDtypeBitForBit) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  for (float f : bf16_edge_values(seed)) {
    ASSERT_EQ(hd::f32_to_bf16(f), f32_to_bf16(f)) << std::hex << bits(f);
    const uint16_t b = f32_to_bf16(f);
    ASSERT_EQ(bits(hd::bf16_to_f32(b)), bits(bf16_to_f32(b))) << std::hex << b;
  }
}

TEST(SharedMath, ExpPolyEqualsCpuExpVecAndIsAccurate) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::vector<float> x = test::uniform(200000, seed, -100.0f, 100.0f);
  for (float v : {-87.3f, -87.4f, 0.0f, 88.7f, 1e-30f, -1e-30f}) x.push_back(v);
  for (float v : x) {
    ASSERT_EQ(bits(hd::exp_poly(v)), bits(cpu::exp_vec(v))) << v;
    if (v > -87.0f && v < 88.0f) {
      ASSERT_NEAR(hd::exp_poly(v), std::exp(double(v)), 3e-7 * std::exp(double(v))) << v;
    }
  }
}

// fp32 results of the same formula differ in the last places where a multiply-add is
// fused: the CPU kernels run a variant compiled for the CPU's level (FMA on AVX2 and
// AVX-512) and nvcc contracts as well. Up to 8 ulp of the value (3-4 seen), plus 2e-7 of
// the array's largest value where terms cancel (RoPE's x1·c - x2·s near zero); a
// different formula is off by far more.
void expect_ulp_close(const std::vector<float>& got, const std::vector<float>& want,
                      const char* what, uint32_t seed) {
  ASSERT_EQ(got.size(), want.size());
  float scale = 0;
  for (float w : want) scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-6f * std::fabs(want[i]) + 2e-7f * scale + 1e-30f)
        << what << " at " << i << " seed=" << seed;
}

TEST(SharedMath, SwigluMatchesCpuKernelBothWays) {
  const uint32_t seed = fresh_seed();
  for (auto [M, I] : {std::pair<int64_t, int64_t>{5, 37}, {16, 1024}}) {
    std::vector<float> gu = test::normal(size_t(M * 2 * I), seed, 3.0f);
    std::vector<float> dh = test::normal(size_t(M * I), seed + 1);
    std::vector<float> want_h(size_t(M * I)), want_d(size_t(M * 2 * I));
    cpu::swiglu_forward(want_h.data(), gu.data(), M, I);
    cpu::swiglu_backward(want_d.data(), dh.data(), gu.data(), M, I);
    std::vector<float> h(want_h.size()), d(want_d.size());
    for (int64_t t = 0; t < M * I; ++t) {  // as swiglu.cu's threads
      const int64_t m = t / I, i = t % I;
      const float* g = gu.data() + m * 2 * I;
      h[t] = hd::swiglu(g[i], g[I + i]);
      hd::swiglu_grad(g[i], g[I + i], dh[t], &d[m * 2 * I + i], &d[m * 2 * I + I + i]);
    }
    expect_ulp_close(h, want_h, "swiglu forward", seed);
    expect_ulp_close(d, want_d, "swiglu backward", seed);
  }
}

TEST(SharedMath, RopeRotationMatchesCpuKernelAndInverts) {
  const uint32_t seed = fresh_seed();
  const int64_t M = 9, heads = 6, D = 128, stride = heads * D + 40, max_pos = 4096;
  std::vector<float> cs(size_t(max_pos * D));
  for (int64_t p = 0; p < max_pos; ++p)
    for (int64_t i = 0; i < D / 2; ++i) {
      const double a = double(p) * std::pow(500000.0, -2.0 * double(i) / double(D));
      cs[p * D + i] = float(std::cos(a));
      cs[p * D + D / 2 + i] = float(std::sin(a));
    }
  std::vector<int32_t> pos;
  std::mt19937 rng(seed);
  for (int64_t m = 0; m < M; ++m) pos.push_back(int32_t(rng() % max_pos));
  const std::vector<float> x = test::normal(size_t(M * stride), seed);
  for (bool inverse : {false, true}) {
    std::vector<float> want = x, got = x;
    cpu::rope_apply(want.data(), pos.data(), cs.data(), M, heads, D, stride, inverse);
    const int64_t half = D / 2;
    for (int64_t t = 0; t < M * heads * half; ++t) {  // as rope.cu's threads
      const int64_t i = t % half, h = (t / half) % heads, m = t / (half * heads);
      const float* c = cs.data() + int64_t(pos[m]) * D;
      float* v = got.data() + m * stride + h * D;
      hd::rope_rotate(&v[i], &v[half + i], c[i], c[half + i], inverse);
    }
    expect_ulp_close(got, want, inverse ? "rope inverse" : "rope forward", seed);
    if (!inverse) {
      std::vector<float> back = got;
      for (int64_t t = 0; t < M * heads * half; ++t) {
        const int64_t i = t % half, h = (t / half) % heads, m = t / (half * heads);
        const float* c = cs.data() + int64_t(pos[m]) * D;
        float* v = back.data() + m * stride + h * D;
        hd::rope_rotate(&v[i], &v[half + i], c[i], c[half + i], true);
      }
      for (size_t k = 0; k < x.size(); ++k) ASSERT_NEAR(back[k], x[k], 1e-5f) << k;
    }
  }
}

TEST(SharedMath, AdamwUpdateMatchesCpuKernelWithBf16Copies) {
  const uint32_t seed = fresh_seed();
  const size_t n = 10007;
  std::vector<float> p = test::normal(n, seed), m0(n, 0.0f), v0(n, 0.0f);
  std::vector<float> pw = p, mw = m0, vw = v0, rw(n), pg = p, mg = m0, vg = v0, rg(n);
  std::vector<uint16_t> bw(n), bg(n);
  AdamWArgs a;
  a.lr = 3e-3f, a.weight_decay = 0.1f, a.grad_scale = 0.7f;
  for (int64_t step = 1; step <= 4; ++step) {
    a.step = step;
    const std::vector<float> g = test::normal(n, seed + uint32_t(step), 0.01f);
    cpu::adamw_step(pw.data(), g.data(), mw.data(), vw.data(), rw.data(), bw.data(), n, a);
    const hd::AdamWConsts k = hd::adamw_consts(a);
    for (size_t i = 0; i < n; ++i) {  // as adamw.cu's threads
      pg[i] = hd::adamw_update(pg[i], g[i], &mg[i], &vg[i], k);
      bg[i] = hd::f32_to_bf16(pg[i]);
      rg[i] = hd::bf16_to_f32(bg[i]);
    }
  }
  expect_ulp_close(pg, pw, "adamw p", seed);
  expect_ulp_close(mg, mw, "adamw m", seed);
  expect_ulp_close(vg, vw, "adamw v", seed);
  for (size_t i = 0; i < n; ++i) {
    // p within an ulp can still round to the neighbouring bf16 at a tie.
    ASSERT_LE(std::abs(int(bg[i]) - int(bw[i])), 1) << i << " seed=" << seed;
    ASSERT_EQ(rg[i], bf16_to_f32(bg[i]));
  }
}

TEST(SharedMath, Nf4AndLog8DequantizationMatchCpuKernels) {
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  const size_t n = 64 * 37 + 13;  // a partial last block and an odd count of nibbles
  const int64_t block = 64;
  std::vector<uint8_t> codes((n + 1) / 2);
  for (auto& c : codes) c = uint8_t(rng());
  const std::vector<float> absmax = test::uniform((n + block - 1) / block, seed, 0.01f, 2.0f);
  std::vector<float> want(n), got(n);
  cpu::dequantize_nf4(want.data(), codes.data(), absmax.data(), n, block);
  for (size_t i = 0; i < n; ++i)
    got[i] = kNf4Values[hd::nf4_code(codes.data(), i)] * absmax[i / size_t(block)];
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], want[i]) << i << " seed=" << seed;

  const int64_t group = 256;
  const size_t ns = 256 * 5 + 77;
  std::vector<uint8_t> q(ns);
  for (auto& c : q) c = uint8_t(rng());
  std::vector<float> lo_step;
  for (size_t g = 0; g < (ns + group - 1) / group; ++g) {
    lo_step.push_back(std::log(1e-3f) + float(rng() % 100) * 0.01f);
    lo_step.push_back(0.03f + float(rng() % 100) * 1e-4f);
  }
  std::vector<float> want_s(ns), got_s(ns);
  cpu::dequantize_log8(want_s.data(), q.data(), lo_step.data(), ns, group);
  for (size_t i = 0; i < ns; ++i) {
    const size_t g = i / size_t(group);
    got_s[i] = hd::log8_value(q[i], lo_step[2 * g], lo_step[2 * g + 1]);
  }
  // expf of the same argument; 2 ulp of slack in case libm's vector variant is used there.
  expect_ulp_close(got_s, want_s, "log8", seed);
}

TEST(SharedMath, DropoutMaskIsTheCpuMaskForEverySeed) {
  const uint32_t seed = fresh_seed();
  const size_t n = 50000;
  const std::vector<float> in = test::normal(n, seed);
  std::mt19937_64 rng(seed);
  for (float p : {0.05f, 0.1f, 0.5f}) {
    const uint64_t s = rng();
    std::vector<float> want(n);
    cpu::dropout(want.data(), in.data(), n, p, s, false);
    const uint64_t key = hd::dropout_key(s), threshold = hd::dropout_threshold(p);
    const float keep_scale = 1.0f / (1.0f - p);
    size_t dropped = 0;
    for (size_t i = 0; i < n; ++i) {
      const float v = hd::dropout_keep(key, i, threshold) ? in[i] * keep_scale : 0.0f;
      ASSERT_EQ(v, want[i]) << "p=" << p << " i=" << i << " seed=" << seed;
      dropped += v == 0.0f;
    }
    // The mask drops about p of the elements (binomial: 5 sigma is < 1.2% of 50000).
    EXPECT_NEAR(double(dropped) / double(n), double(p), 0.012) << "seed=" << seed;
  }
}

}  // namespace
}  // namespace lathe
