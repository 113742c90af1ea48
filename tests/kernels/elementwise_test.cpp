#include "kernels/cpu/elementwise.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/fd_check.h"

namespace lathe {
namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(RoundToBf16, EqualsScalarConversionBitForBit) {
  // Ties to even in both directions, NaNs (quiet, signalling, negative), infinities, the
  // largest finite value (rounds to inf), subnormals and signed zeros, then random bits.
  std::vector<uint32_t> bits = {0x00000000, 0x80000000, 0x3f808000, 0x3f818000, 0x3f808001,
                                0x3f807fff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001,
                                0xff800001, 0x7fbfffff, 0x7f7fffff, 0xff7fffff, 0x7f7f7fff,
                                0x00000001, 0x00008000, 0x00018000, 0x807fffff, 0x3f800000};
  std::mt19937 rng(101);
  for (int i = 0; i < 10000; ++i) bits.push_back(rng());
  std::vector<float> x(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) x[i] = from_bits(bits[i]);
  std::vector<float> y = x;
  cpu::round_to_bf16(y.data(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const uint32_t want = bits_of(bf16_to_f32(f32_to_bf16(x[i])));
    ASSERT_EQ(bits_of(y[i]), want) << std::hex << "input 0x" << bits[i];
  }
}

class SumSquares : public ::testing::TestWithParam<size_t> {};

TEST_P(SumSquares, MatchesDouble) {
  const size_t n = GetParam();
  // Values over six orders of magnitude, as in a gradient of many tensors.
  std::vector<float> x = test::normal(n, 103);
  for (size_t i = 0; i < n; ++i) x[i] *= std::pow(10.0f, float(i % 7) - 3.0f);
  double want = 0;
  for (float v : x) want += double(v) * double(v);
  // fp32 sums of up to 4096 positive terms per block: ~sqrt(4096)·ulp ≈ 4e-6 relative.
  EXPECT_NEAR(cpu::sum_squares(x.data(), n), want, 1e-5 * want);
}

TEST_P(SumSquares, BitIdenticalAcrossCallsAndThreadCounts) {
  // Gradient clipping uses this norm; equal bits keep resumed runs identical even when
  // they run with another number of threads.
  const size_t n = GetParam();
  const std::vector<float> x = test::normal(n, 104);
  const int saved = omp_get_max_threads();
  const double ref = cpu::sum_squares(x.data(), n);
  for (int threads : {1, 2, 3, 8}) {
    omp_set_num_threads(threads);
    for (int rep = 0; rep < 3; ++rep) {
      const double s = cpu::sum_squares(x.data(), n);
      EXPECT_EQ(std::memcmp(&s, &ref, sizeof s), 0) << threads << " threads, repeat " << rep;
    }
  }
  omp_set_num_threads(saved);
}

// Empty, a partial block, one exact block, and many blocks with a ragged tail.
INSTANTIATE_TEST_SUITE_P(Sizes, SumSquares, ::testing::Values(0, 1, 4095, 4096, 100003),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

}  // namespace
}  // namespace lathe
