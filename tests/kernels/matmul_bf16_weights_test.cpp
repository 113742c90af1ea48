// Products of a few fp32 rows with bf16-stored weights (generation and serving of bf16
// models on CPUs without bf16 dot products), in each ISA variant this CPU runs, against
// the same product in double precision: tails on every side of the 4-row, 3-weight and
// 8-wide blocks, strides wider than the rows, and accumulation into C. Then the property
// serving relies on: a row's result is bit for bit the same alone as in any batch.
#include "kernels/cpu/matmul_bf16_weights.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "kernels/few_rows_product.h"

namespace lathe {
namespace {

using Product = test::FewRowsProduct<uint16_t>;

Product make(int64_t M, int64_t N, int64_t K, std::mt19937& rng) {
  return test::make_few_rows_product<uint16_t>(M, N, K, rng, f32_to_bf16);
}

TEST(MatmulBf16Weights, EveryIsaMatchesTheDefinition) {
  std::mt19937 rng(11);
  const int64_t shapes[][3] = {{1, 1, 1},   {1, 3, 8},   {4, 3, 16},    {5, 7, 13},
                               {9, 10, 37}, {13, 5, 64}, {33, 17, 200}, {2, 40, 1376}};
  for (const auto& s : shapes) {
    const Product p = make(s[0], s[1], s[2], rng);
    for (float beta : {0.0f, 1.0f})
      for (const auto& [isa, fn] : LATHE_TEST_ISA_VARIANTS(matmul_bf16_weights)) {
        std::vector<float> C = p.C0;
        fn(C.data(), p.A.data(), p.W.data(), p.M, p.N, p.K, p.lda, p.ldw, p.ldc, beta);
        const std::string at = std::string(cpu_isa_name(isa)) + " M=" + std::to_string(p.M) +
                               " N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) +
                               " beta=" + std::to_string(int(beta));
        const double worst = test::worst_relative_error(p, C, beta, bf16_to_f32);
        // fp32 accumulation in 8 partial sums of K/8 terms, then the tail: each adds at
        // most one rounding (2^-24 relative) of the sum's magnitude per term.
        const double bound = double(p.K / 8 + 8) * 6e-8;
        EXPECT_LE(worst, bound) << at;
        std::printf("[ reached  ] %s: max error %.2e of sum|a*w| (bound %.1e)\n", at.c_str(), worst,
                    bound);
      }
  }
}

TEST(MatmulBf16Weights, ARowsResultDoesNotDependOnItsBatch) {
  std::mt19937 rng(12);
  const Product p = make(13, 11, 300, rng);
  for (const auto& [isa, fn] : LATHE_TEST_ISA_VARIANTS(matmul_bf16_weights)) {
    std::vector<float> batch = p.C0;
    fn(batch.data(), p.A.data(), p.W.data(), p.M, p.N, p.K, p.lda, p.ldw, p.ldc, 1.0f);
    for (int64_t m = 0; m < p.M; ++m) {
      std::vector<float> alone(p.C0.begin() + m * p.ldc, p.C0.begin() + (m + 1) * p.ldc);
      fn(alone.data(), p.A.data() + m * p.lda, p.W.data(), 1, p.N, p.K, p.lda, p.ldw, p.ldc, 1.0f);
      EXPECT_EQ(0, std::memcmp(alone.data(), batch.data() + m * p.ldc, size_t(p.N) * 4))
          << cpu_isa_name(isa) << ": row " << m << " differs alone and in a batch of " << p.M;
    }
  }
}

// Through the CPU backend without bf16 kernels, as a bf16 model's products reach it (B
// null, bf16 bits beside it): a few rows read them in place, many rows on a widened copy;
// both are the product.
TEST(MatmulBf16Weights, BackendRunsBothPathsOnFp32Kernels) {
  auto be = make_cpu_backend(0, /*bf16_kernels=*/false);
  std::mt19937 rng(13);
  for (int64_t M : {5, 200}) {
    Product p = make(M, 24, 96, rng);
    // A model stores its weights densely (row stride K), as the widened copy assumes.
    std::vector<uint16_t> dense(size_t(p.N * p.K));
    for (int64_t n = 0; n < p.N; ++n)
      std::memcpy(&dense[size_t(n * p.K)], &p.W[size_t(n * p.ldw)], size_t(p.K) * 2);
    std::vector<float> C = p.C0;
    MatmulArgs a;
    a.M = M, a.N = p.N, a.K = p.K;
    a.A = p.A.data(), a.lda = p.lda;
    a.B_bf16 = dense.data(), a.ldb = p.K, a.trans_b = true;
    a.C = C.data(), a.ldc = p.ldc, a.beta = 1.0f;
    a.bf16_operands = true;
    be->matmul(a);
    EXPECT_LE(test::worst_relative_error(p, C, 1.0f, bf16_to_f32), 2e-6) << "M=" << M;
  }
}

}  // namespace
}  // namespace lathe
