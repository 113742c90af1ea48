#include "kernels/cpu/rows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "kernels/fd_check.h"

namespace lathe {
namespace {

// Distinct rows of [0, total) in shuffled order: what the loss head and the decoder pass.
std::vector<int32_t> distinct_rows(int64_t n, int64_t total, uint32_t seed) {
  std::vector<int32_t> all(static_cast<size_t>(total));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(size_t(n));
  return all;
}

// Bit-exact: the callers swapped a copy() per row for these, and the losses and gradients
// of the golden tests must not move by one bit.
TEST(Rows, GatherAndScatterMoveExactBytes) {
  for (auto [n, total, C] :
       {std::tuple<int64_t, int64_t, int64_t>{0, 4, 8}, {1, 1, 3}, {5, 37, 64}, {300, 512, 129}}) {
    const std::vector<float> src = test::normal(size_t(total * C), 81);
    const std::vector<int32_t> rows = distinct_rows(n, total, 82);
    std::vector<float> got(size_t(n * C), -1.0f);
    cpu::gather_rows(got.data(), src.data(), rows.data(), n, C);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(0, std::memcmp(got.data() + i * C, src.data() + int64_t(rows[size_t(i)]) * C,
                               size_t(C) * 4))
          << "gather row " << i;

    const std::vector<float> dx = test::normal(size_t(n * C), 83);
    std::vector<float> out(size_t(total * C), 7.0f), want = out;
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(want.data() + int64_t(rows[size_t(i)]) * C, dx.data() + i * C, size_t(C) * 4);
    cpu::scatter_rows(out.data(), dx.data(), rows.data(), n, C);
    ASSERT_EQ(0, std::memcmp(out.data(), want.data(), out.size() * 4))
        << "scatter n=" << n << " C=" << C;  // rows not named keep their values
  }
}

TEST(Rows, TheCpuBackendCallsTheKernels) {
  auto be = make_cpu_backend(2);
  const int64_t total = 9, n = 4, C = 5;
  const std::vector<float> src = test::normal(size_t(total * C), 84);
  const std::vector<int32_t> rows = {7, 0, 3, 8};
  std::vector<float> g(size_t(n * C)), s(size_t(total * C), 0.0f);
  be->gather_rows(g.data(), src.data(), rows.data(), n, C);
  be->scatter_rows(s.data(), g.data(), rows.data(), n, C);
  for (int32_t r : rows)
    EXPECT_EQ(0, std::memcmp(s.data() + r * C, src.data() + r * C, size_t(C) * 4)) << r;
  EXPECT_EQ(s[1 * C], 0.0f);
}

}  // namespace
}  // namespace lathe
