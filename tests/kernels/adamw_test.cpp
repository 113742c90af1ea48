#include "kernels/cpu/adamw.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/fd_check.h"

namespace lathe {
namespace {

using test::all_close;

// torch.optim.AdamW (amsgrad=False, maximize=False) for one parameter, in double:
//   p *= 1 - lr·wd;  m = b1·m + (1-b1)·g;  v = b2·v + (1-b2)·g²
//   denom = sqrt(v) / sqrt(1 - b2^t) + eps;  p -= lr / (1 - b1^t) · m / denom
struct RefAdamW {
  double p, m = 0, v = 0;
  double m_mag = 0;  // m's recurrence on |g|: the scale of its fp32 rounding error
  void step(double g, const AdamWArgs& a) {
    const double b1 = a.beta1, b2 = a.beta2, t = double(a.step);
    p *= 1.0 - double(a.lr) * double(a.weight_decay);
    m = b1 * m + (1.0 - b1) * g;
    m_mag = b1 * m_mag + (1.0 - b1) * std::fabs(g);
    v = b2 * v + (1.0 - b2) * g * g;
    const double denom = std::sqrt(v) / std::sqrt(1.0 - std::pow(b2, t)) + double(a.eps);
    p -= double(a.lr) / (1.0 - std::pow(b1, t)) * m / denom;
  }
};

struct Hyper {
  float lr, weight_decay, beta1, beta2, eps;
};

class AdamW : public ::testing::TestWithParam<Hyper> {};

TEST_P(AdamW, SeveralStepsMatchPyTorchFormulas) {
  const Hyper hp = GetParam();
  const size_t n = 1000;
  std::vector<float> p = test::normal(n, 81), m(n, 0.0f), v(n, 0.0f);
  std::vector<RefAdamW> ref;
  for (float x : p) ref.push_back({double(x)});
  for (int64_t t = 1; t <= 6; ++t) {
    // Gradients of varying size per element, some exactly zero (v stays 0 at first, so
    // the update is 0/(0 + eps)), and a sign flip midway so m and v disagree.
    std::vector<float> g = test::normal(n, 82 + uint32_t(t));
    for (size_t i = 0; i < n; ++i) {
      g[i] *= std::pow(10.0f, float(i % 7) - 4.0f) * (t == 4 ? -1.0f : 1.0f);
      if (i % 11 == 0) g[i] = 0.0f;
    }
    const AdamWArgs a{hp.lr, hp.beta1, hp.beta2, hp.eps, hp.weight_decay, t};
    cpu::adamw_step(p.data(), g.data(), m.data(), v.data(), nullptr, nullptr, n, a);
    std::vector<double> want_p(n), want_m(n), want_v(n), m_tol(n);
    for (size_t i = 0; i < n; ++i) {
      ref[i].step(g[i], a);
      want_p[i] = ref[i].p, want_m[i] = ref[i].m, want_v[i] = ref[i].v;
      m_tol[i] = 1e-6 * ref[i].m_mag;
    }
    SCOPED_TRACE("step " + std::to_string(t));
    // fp32 state against double: m to a few ulps of its terms (a sign flip cancels them),
    // v (a sum of squares) to a few ulps; p to a few ulps of p plus a small fraction of
    // the O(lr) update (m/denom is ill-conditioned where v ~ eps²).
    EXPECT_TRUE(test::within(m, want_m, m_tol));
    EXPECT_TRUE(all_close(v, want_v, 1e-5, 0));
    EXPECT_TRUE(all_close(p, want_p, 1e-6, 1e-4 * hp.lr));
  }
}

INSTANTIATE_TEST_SUITE_P(Hypers, AdamW,
                         ::testing::Values(Hyper{1e-3f, 0.0f, 0.9f, 0.999f, 1e-8f},
                                           Hyper{1e-2f, 0.1f, 0.9f, 0.999f, 1e-8f},
                                           Hyper{3e-4f, 0.01f, 0.8f, 0.95f, 1e-6f}),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

TEST(AdamW, WeightDecayIsDecoupled) {
  // With g = 0 every step the moments stay 0 and only the decay p *= 1 - lr·wd acts,
  // independently of the adaptive denominator (unlike L2 regularization in Adam).
  const size_t n = 64;
  const std::vector<float> p0 = test::normal(n, 83), g(n, 0.0f);
  std::vector<float> p = p0, m(n, 0.0f), v(n, 0.0f);
  for (int64_t t = 1; t <= 5; ++t)
    cpu::adamw_step(p.data(), g.data(), m.data(), v.data(), nullptr, nullptr, n,
                    AdamWArgs{0.05f, 0.9f, 0.999f, 1e-8f, 0.2f, t});
  for (size_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(p[i], p0[i] * std::pow(1.0f - 0.05f * 0.2f, 5));
  EXPECT_EQ(m, g);
  EXPECT_EQ(v, g);
}

TEST(AdamW, Bf16ComputeCopyIsTheRoundedParameter) {
  const size_t n = 513;
  std::vector<float> p = test::normal(n, 84), g = test::normal(n, 85), m(n, 0.0f), v(n, 0.0f);
  // Magnitudes over 40 binades, so the rounding is exercised at many exponents.
  for (size_t i = 0; i < n; ++i) p[i] *= std::pow(2.0f, float(int(i % 41) - 20));
  std::vector<float> compute(n, -1.0f);
  std::vector<uint16_t> bits(n, 0xffff);
  cpu::adamw_step(p.data(), g.data(), m.data(), v.data(), compute.data(), bits.data(), n,
                  AdamWArgs{1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1});
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(compute[i], bf16_to_f32(f32_to_bf16(p[i]))) << "element " << i;
    ASSERT_EQ(bits[i], f32_to_bf16(p[i])) << "element " << i;
  }
}

TEST(AdamW, NullComputeLeavesStateUpdatesUnchanged) {
  const size_t n = 100;
  const std::vector<float> p0 = test::normal(n, 86), g = test::normal(n, 87);
  std::vector<float> p1 = p0, m1(n, 0.0f), v1(n, 0.0f), c(n);
  std::vector<float> p2 = p0, m2(n, 0.0f), v2(n, 0.0f);
  const AdamWArgs a{1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3};
  std::vector<uint16_t> bits(n);
  cpu::adamw_step(p1.data(), g.data(), m1.data(), v1.data(), c.data(), bits.data(), n, a);
  cpu::adamw_step(p2.data(), g.data(), m2.data(), v2.data(), nullptr, nullptr, n, a);
  // The two calls may run differently vectorized code (the compiler fuses multiply-adds
  // per code path), so the updates agree to rounding, not bit for bit.
  for (size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(p1[i], p2[i], 1e-6f * (1 + std::fabs(p2[i]))) << i;
    EXPECT_NEAR(m1[i], m2[i], 1e-6f * (1 + std::fabs(m2[i]))) << i;
    EXPECT_NEAR(v1[i], v2[i], 1e-6f * (1 + std::fabs(v2[i]))) << i;
  }
}

}  // namespace
}  // namespace lathe
