#include "kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/fd_check.h"

namespace lathe {
namespace {

using test::all_close;

constexpr double kTheta = 10000.0;

// The kernel's table: row p holds cos of the D/2 angles p·θ^(-2i/D), then their sines.
std::vector<float> cos_sin_table(int64_t max_pos, int64_t D) {
  std::vector<float> t(max_pos * D);
  for (int64_t p = 0; p < max_pos; ++p)
    for (int64_t i = 0; i < D / 2; ++i) {
      const double a = double(p) * std::pow(kTheta, -2.0 * double(i) / double(D));
      t[p * D + i] = float(std::cos(a));
      t[p * D + D / 2 + i] = float(std::sin(a));
    }
  return t;
}

// HF apply_rotary_pos_emb: emb = cat(freqs, freqs); x·cos(emb) + rotate_half(x)·sin(emb)
// with rotate_half(x) = cat(-x2, x1). Angles recomputed in double, not read from a table.
std::vector<double> rope_ref(const std::vector<double>& x, const std::vector<int32_t>& pos,
                             int64_t heads, int64_t D, int64_t stride) {
  std::vector<double> out = x;
  for (size_t m = 0; m < pos.size(); ++m)
    for (int64_t h = 0; h < heads; ++h) {
      const double* v = &x[m * stride + h * D];
      for (int64_t d = 0; d < D; ++d) {
        const int64_t i = d % (D / 2);
        const double a = double(pos[m]) * std::pow(kTheta, -2.0 * double(i) / double(D));
        const double rot = d < D / 2 ? -v[d + D / 2] : v[d - D / 2];
        out[m * stride + h * D + d] = v[d] * std::cos(a) + rot * std::sin(a);
      }
    }
  return out;
}

struct Shape {
  int64_t M, heads, D, extra;  // extra: floats per row beyond the rotated heads
};

class Rope : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    const auto [M, heads, D, extra] = GetParam();
    stride = heads * D + extra;
    x = test::normal(M * stride, 41);
    // Positions restart per document and run past the first rows of the table.
    for (int64_t m = 0; m < M; ++m) pos.push_back(int32_t((m * 7) % 23 + (m % 3) * 500));
    table = cos_sin_table(1100, D);
  }
  int64_t stride = 0;
  std::vector<float> x, table;
  std::vector<int32_t> pos;
};

TEST_P(Rope, ForwardMatchesRotateHalf) {
  const auto [M, heads, D, extra] = GetParam();
  std::vector<float> y = x;
  cpu::rope_apply(y.data(), pos.data(), table.data(), M, heads, D, stride, false);
  const auto want = rope_ref(test::to_double(x), pos, heads, D, stride);
  // The fp32 table entries carry ~6e-8 relative error each; values are O(1).
  EXPECT_TRUE(all_close(y, want, 1e-6, 1e-6));
  // Features past the rotated heads (the v part of a qkv row) are left untouched.
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = heads * D; k < stride; ++k) ASSERT_EQ(y[m * stride + k], x[m * stride + k]);
}

TEST_P(Rope, InverseUndoesForward) {
  const auto [M, heads, D, extra] = GetParam();
  std::vector<float> y = x;
  cpu::rope_apply(y.data(), pos.data(), table.data(), M, heads, D, stride, false);
  cpu::rope_apply(y.data(), pos.data(), table.data(), M, heads, D, stride, true);
  // A rotation and its transpose: exact but for two roundings per element and the fp32
  // table's cos² + sin² differing from 1 by ~1e-7.
  EXPECT_TRUE(all_close(y, x, 1e-6, 1e-6));
}

TEST_P(Rope, InverseIsTheBackward) {
  const auto [M, heads, D, extra] = GetParam();
  const std::vector<float> R = test::normal(M * stride, 42);
  std::vector<float> grad = R;
  cpu::rope_apply(grad.data(), pos.data(), table.data(), M, heads, D, stride, true);
  // Rows past the heads pass through unchanged, so their gradient is R itself.
  const auto fd = test::fd_gradient(
      [&, heads = heads, D = D](const std::vector<double>& xv) {
        return test::weighted_sum(rope_ref(xv, pos, heads, D, stride), R);
      },
      test::to_double(x), 1e-5);
  // The loss is linear in x, so the FD is exact to ~1e-10; the rest is fp32 table error.
  EXPECT_TRUE(all_close(grad, fd, 1e-6, 1e-6));
}

INSTANTIATE_TEST_SUITE_P(Shapes, Rope,
                         ::testing::Values(Shape{3, 1, 8, 0}, Shape{9, 3, 16, 0},
                                           Shape{12, 6, 16, 32}, Shape{5, 2, 64, 5}),
                         [](const auto& info) {
                           const Shape& s = info.param;
                           return "M" + std::to_string(s.M) + "_heads" + std::to_string(s.heads) +
                                  "_D" + std::to_string(s.D) + "_extra" + std::to_string(s.extra);
                         });

TEST(Rope, PositionZeroIsIdentity) {
  const int64_t D = 16;
  const std::vector<float> table = cos_sin_table(1, D), x = test::normal(2 * D, 43);
  std::vector<float> y = x;
  const std::vector<int32_t> pos = {0};
  cpu::rope_apply(y.data(), pos.data(), table.data(), 1, 2, D, 2 * D, false);
  EXPECT_EQ(y, x);
}

}  // namespace
}  // namespace lathe
