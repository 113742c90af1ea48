#include "kernels/cpu/embedding.h"

#include <gtest/gtest.h>

#include <vector>

#include "kernels/fd_check.h"

namespace lathe {
namespace {

using test::all_close;

std::vector<double> embedding_ref(const std::vector<double>& table, const std::vector<int32_t>& ids,
                                  int64_t C) {
  std::vector<double> out(ids.size() * C);
  for (size_t m = 0; m < ids.size(); ++m)
    for (int64_t c = 0; c < C; ++c) out[m * C + c] = table[ids[m] * C + c];
  return out;
}

struct Shape {
  int64_t vocab, M, C;
};

class Embedding : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    const auto [vocab, M, C] = GetParam();
    table = test::normal(vocab * C, 71);
    // Few distinct ids for many rows: most ids repeat, some never occur.
    std::mt19937 rng(72);
    for (int64_t m = 0; m < M; ++m) ids.push_back(int32_t(rng() % ((vocab + 1) / 2)));
    ids.back() = int32_t(vocab - 1);  // the last row of the table is reachable
  }
  std::vector<float> table;
  std::vector<int32_t> ids;
};

TEST_P(Embedding, ForwardCopiesRows) {
  const auto [vocab, M, C] = GetParam();
  std::vector<float> out(M * C, -1.0f);
  cpu::embedding_forward(out.data(), ids.data(), table.data(), M, C);
  const auto want = embedding_ref(test::to_double(table), ids, C);
  EXPECT_TRUE(all_close(out, want, 0, 0));  // a gather: bit-exact
}

TEST_P(Embedding, BackwardAddsIntoTableGradient) {
  const auto [vocab, M, C] = GetParam();
  const std::vector<float> R = test::normal(M * C, 73);
  // dtable starts non-zero: the kernel accumulates (tied or repeated use adds up).
  const std::vector<float> d0 = test::uniform(vocab * C, 74);
  std::vector<float> dtable = d0;
  cpu::embedding_backward(dtable.data(), ids.data(), R.data(), M, C);
  auto fd = test::fd_gradient(
      [&, C = C](const std::vector<double>& t) {
        return test::weighted_sum(embedding_ref(t, ids, C), R);
      },
      test::to_double(table), 1e-3);
  for (size_t i = 0; i < fd.size(); ++i) fd[i] += d0[i];
  // fp32 sums of the rows that share an id (at most M terms of size ~1).
  EXPECT_TRUE(all_close(dtable, fd, 1e-5, 1e-6 * double(M)));
  // Rows of ids that never occur are untouched, bit for bit.
  std::vector<bool> used(vocab, false);
  for (int32_t id : ids) used[id] = true;
  for (int64_t v = 0; v < vocab; ++v) {
    if (used[v]) continue;
    for (int64_t c = 0; c < C; ++c) ASSERT_EQ(dtable[v * C + c], d0[v * C + c]) << "id " << v;
  }
}

TEST_P(Embedding, BackwardIsDeterministic) {
  // Columns are split across threads, so the order of the sums per element is fixed.
  const auto [vocab, M, C] = GetParam();
  const std::vector<float> R = test::normal(M * C, 75);
  std::vector<float> a(vocab * C, 0.0f), b(vocab * C, 0.0f);
  cpu::embedding_backward(a.data(), ids.data(), R.data(), M, C);
  cpu::embedding_backward(b.data(), ids.data(), R.data(), M, C);
  EXPECT_EQ(a, b);
}

// C = 1 and C = 3 are fewer columns than threads on most machines; C = 37 is odd.
INSTANTIATE_TEST_SUITE_P(Shapes, Embedding,
                         ::testing::Values(Shape{4, 6, 1}, Shape{10, 25, 3}, Shape{50, 40, 37},
                                           Shape{300, 200, 64}),
                         [](const auto& info) {
                           const Shape& s = info.param;
                           return "V" + std::to_string(s.vocab) + "_M" + std::to_string(s.M) +
                                  "_C" + std::to_string(s.C);
                         });

}  // namespace
}  // namespace lathe
