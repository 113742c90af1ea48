#include "kernels/cpu/rmsnorm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/fd_check.h"

namespace lathe {
namespace {

using test::all_close;

// HF LlamaRMSNorm: x / sqrt(mean(x²) + eps) * w, here entirely in double.
std::vector<double> rmsnorm_ref(const std::vector<double>& x, const std::vector<double>& w,
                                int64_t M, int64_t C, double eps, std::vector<double>* rstd) {
  std::vector<double> out(M * C);
  if (rstd) rstd->assign(M, 0.0);
  for (int64_t m = 0; m < M; ++m) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += x[m * C + c] * x[m * C + c];
    const double r = 1.0 / std::sqrt(ss / double(C) + eps);
    if (rstd) (*rstd)[m] = r;
    for (int64_t c = 0; c < C; ++c) out[m * C + c] = x[m * C + c] * r * w[c];
  }
  return out;
}

struct Shape {
  int64_t M, C;
};

class RmsNorm : public ::testing::TestWithParam<Shape> {};

TEST_P(RmsNorm, ForwardMatchesDoubleReference) {
  const auto [M, C] = GetParam();
  const float eps = 1e-5f;
  // Rows of very different magnitude: rstd must normalize each one separately.
  std::vector<float> x = test::normal(M * C, 1);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c) x[m * C + c] *= std::pow(4.0f, float(m % 5) - 2.0f);
  const std::vector<float> w = test::uniform(C, 2, 0.5f, 1.5f);
  std::vector<float> out(M * C), rstd(M);
  cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), M, C, eps);

  std::vector<double> want_rstd;
  const auto want = rmsnorm_ref(test::to_double(x), test::to_double(w), M, C, eps, &want_rstd);
  // fp32 sum of C squares, then a few roundings: a few ulps relative.
  EXPECT_TRUE(all_close(out, want, 1e-5, 0));
  EXPECT_TRUE(all_close(rstd, want_rstd, 1e-5, 0));
}

TEST_P(RmsNorm, BackwardMatchesFiniteDifferencesAndAccumulates) {
  const auto [M, C] = GetParam();
  const float eps = 1e-5f;
  const std::vector<float> x = test::normal(M * C, 3);
  const std::vector<float> w = test::uniform(C, 4, 0.5f, 1.5f);
  const std::vector<float> R = test::normal(M * C, 5);
  std::vector<float> out(M * C), rstd(M);
  cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), M, C, eps);

  // dx and dw start non-zero: the kernel must add to what is there.
  const std::vector<float> dx0 = test::uniform(M * C, 6), dw0 = test::uniform(C, 7);
  std::vector<float> dx = dx0, dw = dw0;
  cpu::rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), M, C);

  const auto xd = test::to_double(x), wd = test::to_double(w);
  auto fd_dx = test::fd_gradient(
      [&, M = M, C = C](const std::vector<double>& xv) {
        return test::weighted_sum(rmsnorm_ref(xv, wd, M, C, eps, nullptr), R);
      },
      xd, 1e-5);
  auto fd_dw = test::fd_gradient(
      [&, M = M, C = C](const std::vector<double>& wv) {
        return test::weighted_sum(rmsnorm_ref(xd, wv, M, C, eps, nullptr), R);
      },
      wd, 1e-5);
  for (size_t i = 0; i < fd_dx.size(); ++i) fd_dx[i] += dx0[i];
  for (size_t i = 0; i < fd_dw.size(); ++i) fd_dw[i] += dw0[i];
  // fp32 kernel against exact gradients: dx has a cancelling term (g·w - xhat·dot), so
  // an absolute floor scaled to the largest gradient; dw sums M rows in fp32.
  EXPECT_TRUE(all_close(dx, fd_dx, 1e-4, 1e-5 * test::max_abs(fd_dx)));
  EXPECT_TRUE(all_close(dw, fd_dw, 1e-4, 1e-5 * test::max_abs(fd_dw)));
}

// C = 37 is not a multiple of any vector width; M = 33 gives every thread several rows so
// the per-thread dw partials are all used.
INSTANTIATE_TEST_SUITE_P(Shapes, RmsNorm,
                         ::testing::Values(Shape{1, 8}, Shape{5, 37}, Shape{33, 64}),
                         [](const auto& info) {
                           return "M" + std::to_string(info.param.M) + "_C" +
                                  std::to_string(info.param.C);
                         });

TEST(RmsNorm, ZeroRowGivesFiniteOutput) {
  // eps keeps rstd finite for an all-zero row (e.g. a zero-initialized embedding), so
  // neither the output nor the gradient becomes inf or NaN.
  const int64_t M = 2, C = 16;
  std::vector<float> x(M * C, 0.0f), w(C, 1.0f), out(M * C), rstd(M);
  for (int64_t c = 0; c < C; ++c) x[C + c] = 1.0f;
  cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), M, C, 1e-6f);
  EXPECT_FLOAT_EQ(rstd[0], 1.0f / std::sqrt(1e-6f));
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(out[c], 0.0f);
  std::vector<float> dout(M * C, 1.0f), dx(M * C, 0.0f), dw(C, 0.0f);
  cpu::rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rstd.data(), M, C);
  for (float v : dx) EXPECT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace lathe
