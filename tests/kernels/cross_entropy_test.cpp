#include "kernels/cpu/cross_entropy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/fd_check.h"

namespace lathe {
namespace {

using test::all_close;

// Sum over rows with a target of logsumexp(z) - z[target], in double.
double ce_ref(const std::vector<double>& z, const std::vector<int32_t>& targets, int64_t V) {
  double total = 0;
  for (size_t m = 0; m < targets.size(); ++m) {
    if (targets[m] == -100) continue;
    const double* r = &z[m * V];
    double mx = r[0], s = 0;
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, r[v]);
    for (int64_t v = 0; v < V; ++v) s += std::exp(r[v] - mx);
    total += mx + std::log(s) - r[targets[m]];
  }
  return total;
}

struct Case {
  int64_t M, V;
  float scale;
};

class CrossEntropy : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const auto [M, V, scale] = GetParam();
    // Logits with a spread of several nats and a large common offset, which the
    // max-subtraction must absorb.
    logits = test::normal(M * V, 61, 3.0f);
    for (float& z : logits) z += 40.0f;
    std::mt19937 rng(62);
    for (int64_t m = 0; m < M; ++m) targets.push_back(int32_t(rng() % V));
    if (M > 2) targets[1] = targets[M - 1] = -100;  // ignored rows (padding, prompt tokens)
  }
  std::vector<float> logits;
  std::vector<int32_t> targets;
};

TEST_P(CrossEntropy, LossIsLogSumExpMinusTargetLogit) {
  const auto [M, V, scale] = GetParam();
  std::vector<float> z = logits;
  const double loss = cpu::softmax_cross_entropy(z.data(), targets.data(), M, V, scale);
  // fp32 exp sums over V terms; the loss is unscaled, summed over rows with a target.
  EXPECT_NEAR(loss, ce_ref(test::to_double(logits), targets, V), 1e-5 * double(M));
}

TEST_P(CrossEntropy, GradientIsScaledSoftmaxMinusOneHot) {
  const auto [M, V, scale] = GetParam();
  std::vector<float> z = logits;
  cpu::softmax_cross_entropy(z.data(), targets.data(), M, V, scale);
  // Rows are independent terms of the loss, so each row's FD needs only that row.
  std::vector<double> fd;
  for (int64_t m = 0; m < M; ++m) {
    const std::vector<int32_t> t = {targets[m]};
    const std::vector<double> row(logits.begin() + m * V, logits.begin() + (m + 1) * V);
    for (double g :
         test::fd_gradient([&, V = V](const auto& x) { return ce_ref(x, t, V); }, row, 1e-4))
      fd.push_back(g * scale);
  }
  // Probabilities in fp32; the floor is relative to |scale|, the largest possible entry.
  EXPECT_TRUE(all_close(z, fd, 1e-4, 1e-7 * std::fabs(scale)));
  for (int64_t m = 0; m < M; ++m) {
    if (targets[m] != -100) continue;
    for (int64_t v = 0; v < V; ++v) ASSERT_EQ(z[m * V + v], 0.0f) << "ignored row " << m;
  }
}

TEST_P(CrossEntropy, RepeatedCallsAreBitIdentical) {
  const auto [M, V, scale] = GetParam();
  std::vector<float> z1 = logits, z2 = logits;
  const double l1 = cpu::softmax_cross_entropy(z1.data(), targets.data(), M, V, scale);
  const double l2 = cpu::softmax_cross_entropy(z2.data(), targets.data(), M, V, scale);
  EXPECT_EQ(std::memcmp(&l1, &l2, sizeof l1), 0);
  EXPECT_EQ(std::memcmp(z1.data(), z2.data(), z1.size() * sizeof(float)), 0);
}

// V = 1 is degenerate (loss 0, gradient 0); V = 1000 spans many vector widths.
INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropy,
                         ::testing::Values(Case{1, 1, 1.0f}, Case{3, 7, 1.0f}, Case{9, 50, 0.25f},
                                           Case{16, 1000, -0.5f}),
                         [](const auto& info) {
                           return "M" + std::to_string(info.param.M) + "_V" +
                                  std::to_string(info.param.V) + "_case" +
                                  std::to_string(info.index);
                         });

TEST(CrossEntropy, AllRowsIgnoredGivesZeroLoss) {
  std::vector<float> z = test::normal(3 * 5, 63);
  const std::vector<int32_t> targets = {-100, -100, -100};
  EXPECT_EQ(cpu::softmax_cross_entropy(z.data(), targets.data(), 3, 5, 1.0f), 0.0);
  for (float v : z) EXPECT_EQ(v, 0.0f);
}

TEST(CrossEntropy, LossStaysFiniteWhenTargetIsFarBelowTheMax) {
  // A confidently wrong prediction: target logit 150 nats below the max. The exact loss
  // is ~150 (PyTorch's fp32 log_softmax gives it); exp(-150) underflows fp32 to 0, so a
  // loss computed as log(sum) - log(exp(z_t - max)) would be +inf.
  std::vector<float> z = {0.0f, 150.0f, 1.0f, -2.0f};
  const std::vector<int32_t> targets = {0};
  const double want = ce_ref(test::to_double(z), targets, 4);
  const double loss = cpu::softmax_cross_entropy(z.data(), targets.data(), 1, 4, 1.0f);
  EXPECT_NEAR(loss, want, 1e-4 * want);
  // The gradient is still right: softmax[target] ~ 0, so that entry is ~ -1.
  EXPECT_NEAR(z[0], -1.0f, 1e-6);
  EXPECT_NEAR(z[1], 1.0f, 1e-6);
}

}  // namespace
}  // namespace lathe
