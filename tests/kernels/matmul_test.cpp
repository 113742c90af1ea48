#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "kernels/fd_check.h"

namespace lathe {
namespace {

struct Shape {
  int64_t M, N, K;
};

// make_cpu_backend sets the process-wide OpenMP thread count; put it back so the other
// kernel tests run as they would alone.
class RestoresThreads : public ::testing::Test {
 protected:
  void SetUp() override { saved_threads_ = omp_get_max_threads(); }
  void TearDown() override { omp_set_num_threads(saved_threads_); }

 private:
  int saved_threads_ = 1;
};

// (trans_a, trans_b, beta, bf16 operands)
class Matmul : public RestoresThreads,
               public ::testing::WithParamInterface<std::tuple<bool, bool, float, bool>> {};
class MatmulCache : public RestoresThreads {};

TEST_P(Matmul, MatchesNaiveProductWithStrides) {
  const auto [ta, tb, beta, bf16] = GetParam();
  auto be = make_cpu_backend(2);
  if (bf16)
    std::printf("[ kernels  ] bf16 operands run on %s kernels here\n",
                be->bf16_kernels() ? "bf16" : "fp32");
  const float kNaN = std::numeric_limits<float>::quiet_NaN(), kGuard = 12345.0f;
  // 1x1x1, odd shapes below any blocking, and shapes past typical 16/32/64 blocks.
  // Skinny ones as LoRA issues them (rank 4).
  for (const Shape s : {Shape{1, 1, 1}, Shape{13, 17, 29}, Shape{70, 45, 130}, Shape{3, 200, 5},
                        Shape{64, 4, 32}, Shape{32, 4, 64}, Shape{32, 64, 4}, Shape{4, 64, 32}})
    for (const float alpha : {1.0f, -0.75f, 2.0f}) {
      const auto [M, N, K] = s;
      SCOPED_TRACE("M" + std::to_string(M) + " N" + std::to_string(N) + " K" + std::to_string(K) +
                   " alpha " + std::to_string(alpha));
      // Stored shapes, each with a row stride past its width (a view into a wider matrix).
      const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K, lda = a_cols + 3;
      const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N, ldb = b_cols + 5;
      const int64_t ldc = N + 2;
      std::vector<float> A = test::normal(a_rows * lda, 91), B = test::normal(b_rows * ldb, 92);
      if (bf16) {  // the caller's side of the contract: operands hold bf16 values
        be->round_to_bf16(A.data(), A.size());
        be->round_to_bf16(B.data(), B.size());
      }
      // NaN in the padding: any read of it would poison the result.
      for (int64_t r = 0; r < a_rows; ++r)
        for (int64_t c = a_cols; c < lda; ++c) A[r * lda + c] = kNaN;
      for (int64_t r = 0; r < b_rows; ++r)
        for (int64_t c = b_cols; c < ldb; ++c) B[r * ldb + c] = kNaN;
      std::vector<float> C = test::normal(M * ldc, 93);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < ldc; ++j)
          if (j >= N)
            C[i * ldc + j] = kGuard;
          else if (beta == 0.0f)
            C[i * ldc + j] = kNaN;  // beta = 0 overwrites: C must not be read
      const std::vector<float> C0 = C;

      MatmulArgs a;
      a.M = M, a.N = N, a.K = K;
      a.A = A.data(), a.lda = lda, a.trans_a = ta;
      a.B = B.data(), a.ldb = ldb, a.trans_b = tb;
      a.C = C.data(), a.ldc = ldc, a.alpha = alpha, a.beta = beta;
      a.bf16_operands = bf16;
      be->matmul(a);

      std::vector<float> got;
      std::vector<double> want, tol;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double sum = 0, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            const double x = ta ? A[k * lda + i] : A[i * lda + k];
            const double y = tb ? B[j * ldb + k] : B[k * ldb + j];
            sum += x * y;
            mag += std::fabs(x * y);
          }
          double w = double(alpha) * sum;
          if (beta != 0.0f) w += double(beta) * C0[i * ldc + j];
          got.push_back(C[i * ldc + j]);
          want.push_back(w);
          tol.push_back(std::fabs(alpha) * mag + (beta != 0.0f ? std::fabs(C0[i * ldc + j]) : 0));
        }
      // rel 1e-5 of the sum of |terms|: fp32 accumulation over K <= 130 in any order.
      for (double& t : tol) t *= 1e-5;
      EXPECT_TRUE(test::within(got, want, tol));
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = N; j < ldc; ++j) ASSERT_EQ(C[i * ldc + j], kGuard) << "C padding written";
    }
}

INSTANTIATE_TEST_SUITE_P(Transposes, Matmul,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Values(0.0f, 1.0f), ::testing::Bool()),
                         [](const auto& info) {
                           const auto& p = info.param;
                           return std::string(std::get<0>(p) ? "At" : "A") +
                                  (std::get<1>(p) ? "Bt" : "B") +
                                  (std::get<2>(p) != 0.0f ? "_accumulate" : "_overwrite") +
                                  (std::get<3>(p) ? "_bf16" : "");
                         });

TEST_F(MatmulCache, RepeatedAccumulationAddsEachProduct) {
  // The primitive for a shape is cached; running it again must not reuse stale state.
  auto be = make_cpu_backend(2);
  const int64_t M = 4, N = 6, K = 3;
  const std::vector<float> A = test::normal(M * K, 94), B = test::normal(K * N, 95);
  std::vector<float> once(M * N, 0.0f), thrice(M * N, 0.0f);
  MatmulArgs a;
  a.M = M, a.N = N, a.K = K, a.A = A.data(), a.lda = K, a.B = B.data(), a.ldb = N;
  a.ldc = N, a.beta = 1.0f;
  a.C = once.data();
  be->matmul(a);
  a.C = thrice.data();
  for (int r = 0; r < 3; ++r) be->matmul(a);
  // x + x is exact and 2x + x is one rounding of 3x, so equal to within FLOAT_EQ's ulps.
  for (int64_t e = 0; e < M * N; ++e) EXPECT_FLOAT_EQ(thrice[e], 3.0f * once[e]);
}

}  // namespace
}  // namespace lathe
