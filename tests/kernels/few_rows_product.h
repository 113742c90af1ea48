// What the few-row product tests share (matmul_bf16_weights_test.cpp, packed_matmul_test.cpp):
// a product C[M, N] (+)= A[M, K] · W[N, K]ᵀ with row strides wider than the rows, its error
// against the product in double precision, and the ISA variants of a kernel this CPU runs.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "core/cpu_isa.h"
#include "kernels/cpu/kernel_list.h"

namespace lathe::test {

template <class Fn>
std::vector<std::pair<CpuIsa, Fn>> isa_variants([[maybe_unused]] Fn baseline,
                                                [[maybe_unused]] Fn avx2,
                                                [[maybe_unused]] Fn avx512) {
  std::vector<std::pair<CpuIsa, Fn>> v{{CpuIsa::Baseline, baseline}};
#if defined(__x86_64__)
  if (cpu_isa_detected() >= CpuIsa::Avx2) v.emplace_back(CpuIsa::Avx2, avx2);
  if (cpu_isa_detected() >= CpuIsa::Avx512) v.emplace_back(CpuIsa::Avx512, avx512);
#endif
  return v;
}
// The variants of the CPU kernel `name` (kernels/cpu/kernel_list.h).
#if defined(__x86_64__)
#define LATHE_TEST_ISA_VARIANTS(name)                                                           \
  ::lathe::test::isa_variants(&::lathe::cpu::isa_baseline::name, &::lathe::cpu::isa_avx2::name, \
                              &::lathe::cpu::isa_avx512::name)
#else
#define LATHE_TEST_ISA_VARIANTS(name)                            \
  ::lathe::test::isa_variants(&::lathe::cpu::isa_baseline::name, \
                              &::lathe::cpu::isa_baseline::name, \
                              &::lathe::cpu::isa_baseline::name)
#endif

template <class Weight>
struct FewRowsProduct {
  int64_t M, N, K, lda, ldw, ldc;
  std::vector<float> A, C0;
  std::vector<Weight> W;
};

// Normal(0, 1) rows, weights (through to_weight) and C, each row 3, 5 and 2 wider than used.
template <class Weight, class ToWeight>
FewRowsProduct<Weight> make_few_rows_product(int64_t M, int64_t N, int64_t K, std::mt19937& rng,
                                             ToWeight to_weight) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  FewRowsProduct<Weight> p{M, N, K, K + 3, K + 5, N + 2, {}, {}, {}};
  p.A.resize(size_t(M * p.lda));
  p.W.resize(size_t(N * p.ldw));
  p.C0.resize(size_t(M * p.ldc));
  for (float& x : p.A) x = nd(rng);
  for (Weight& w : p.W) w = to_weight(nd(rng));
  for (float& x : p.C0) x = nd(rng);
  return p;
}

// The worst |C - exact| in units of Σ|terms| (the sum's magnitude, beta·C0 included), and a
// failure for any C element written past a row's N.
template <class Weight, class FromWeight>
double worst_relative_error(const FewRowsProduct<Weight>& p, const std::vector<float>& C,
                            float beta, FromWeight from_weight) {
  double worst = 0;
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t n = 0; n < p.ldc; ++n) {
      const size_t at = size_t(m * p.ldc + n);
      if (n >= p.N) {
        EXPECT_EQ(C[at], p.C0[at]) << "wrote past row " << m;
        continue;
      }
      double want = beta * double(p.C0[at]), mag = std::fabs(want);
      for (int64_t k = 0; k < p.K; ++k) {
        const double t =
            double(p.A[size_t(m * p.lda + k)]) * from_weight(p.W[size_t(n * p.ldw + k)]);
        want += t, mag += std::fabs(t);
      }
      worst = std::max(worst, std::fabs(double(C[at]) - want) / mag);
    }
  return worst;
}

}  // namespace lathe::test
