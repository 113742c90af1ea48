#include "kernels/cpu/swiglu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/fd_check.h"

namespace lathe {
namespace {

using test::all_close;

// h = silu(gate) * up with silu(g) = g / (1 + e^-g), in double.
std::vector<double> swiglu_ref(const std::vector<double>& gate_up, int64_t M, int64_t I) {
  std::vector<double> h(M * I);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t i = 0; i < I; ++i) {
      const double g = gate_up[m * 2 * I + i], u = gate_up[m * 2 * I + I + i];
      h[m * I + i] = g / (1.0 + std::exp(-g)) * u;
    }
  return h;
}

// Gates over the range where silu bends, plus a few saturated ones where e^-g overflows
// fp32 (g = -100) or the sigmoid is exactly 1 in fp32.
std::vector<float> make_gate_up(int64_t M, int64_t I, uint32_t seed) {
  std::vector<float> gu = test::uniform(M * 2 * I, seed, -6.0f, 6.0f);
  const float extremes[] = {-100.0f, -30.0f, 0.0f, 30.0f, 100.0f};
  for (int64_t k = 0; k < 5 && k < I; ++k) gu[k] = extremes[k];
  return gu;
}

struct Shape {
  int64_t M, I;
};

class SwiGlu : public ::testing::TestWithParam<Shape> {};

TEST_P(SwiGlu, ForwardMatchesDoubleReference) {
  const auto [M, I] = GetParam();
  const std::vector<float> gu = make_gate_up(M, I, 51);
  std::vector<float> h(M * I);
  cpu::swiglu_forward(h.data(), gu.data(), M, I);
  const auto want = swiglu_ref(test::to_double(gu), M, I);
  // exp and a division in fp32: a few ulps; silu(g) ~ -g·e^g near g = -6 keeps relative
  // accuracy, and values that underflow are compared against a tiny absolute floor.
  EXPECT_TRUE(all_close(h, want, 2e-6, 1e-30));
}

TEST_P(SwiGlu, BackwardMatchesFiniteDifferencesAndOverwrites) {
  const auto [M, I] = GetParam();
  const std::vector<float> gu = make_gate_up(M, I, 52);
  const std::vector<float> dh = test::normal(M * I, 53);
  // NaN first: the kernel writes its output rather than adding to it.
  std::vector<float> dgu(M * 2 * I, std::numeric_limits<float>::quiet_NaN());
  cpu::swiglu_backward(dgu.data(), dh.data(), gu.data(), M, I);
  const auto fd = test::fd_gradient(
      [&, M = M, I = I](const std::vector<double>& x) {
        return test::weighted_sum(swiglu_ref(x, M, I), dh);
      },
      test::to_double(gu), 1e-5);
  // fp32 sigmoid and products against an exact gradient; the floor is for gradients
  // that are ~0 (saturated gates), where relative error is meaningless.
  EXPECT_TRUE(all_close(dgu, fd, 1e-5, 1e-8 * test::max_abs(fd)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, SwiGlu,
                         ::testing::Values(Shape{1, 5}, Shape{4, 37}, Shape{17, 128}),
                         [](const auto& info) {
                           return "M" + std::to_string(info.param.M) + "_I" +
                                  std::to_string(info.param.I);
                         });

TEST(SwiGlu, SaturatedGatesStayFinite) {
  // e^100 is inf in fp32; silu must come out as 0 (not NaN) for g = -100 and as g for +100.
  const std::vector<float> gu = {-100.0f, 100.0f, 2.0f, 3.0f};
  std::vector<float> h(2), dgu(4);
  cpu::swiglu_forward(h.data(), gu.data(), 1, 2);
  EXPECT_EQ(h[0], -0.0f);
  EXPECT_FLOAT_EQ(h[1], 300.0f);
  const std::vector<float> dh = {1.0f, 1.0f};
  cpu::swiglu_backward(dgu.data(), dh.data(), gu.data(), 1, 2);
  for (float v : dgu) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(dgu[0], 0.0f);
  EXPECT_FLOAT_EQ(dgu[1], 3.0f);
  EXPECT_FLOAT_EQ(dgu[3], 100.0f);
}

}  // namespace
}  // namespace lathe
