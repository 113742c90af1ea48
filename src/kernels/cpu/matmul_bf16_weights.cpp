#include "kernels/cpu/matmul_bf16_weights.h"

#include <algorithm>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "core/dtype.h"
#include "kernels/cpu/isa_namespace.h"

namespace lathe::cpu::LATHE_KERNEL_NS {
namespace {

// Rows × weight rows per tile: MR·NR accumulators plus NR weight vectors and one row
// vector fill the 16 vector registers of AVX2 (4·3 + 3 + 1). Each weight vector serves MR
// rows and each row vector NR weights: a k-step is 12 FMAs for 7 loads.
constexpr int kMR = 4, kNR = 3;

#if defined(__AVX2__) && defined(__FMA__)
// The 8 lanes summed in a fixed tree: (0+4, 1+5, 2+6, 3+7), then pairs, then the two.
inline float sum8(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}

template <int MR, int NR>
void tile(float* C, const float* A, const float* W, int64_t K, int64_t lda, int64_t ldw,
          int64_t ldc, float beta) {
  __m256 acc[MR][NR];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 3
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 w[NR];
#pragma GCC unroll 3
    for (int n = 0; n < NR; ++n) w[n] = _mm256_loadu_ps(W + n * ldw + k);
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m256 a = _mm256_loadu_ps(A + m * lda + k);
#pragma GCC unroll 3
      for (int n = 0; n < NR; ++n) acc[m][n] = _mm256_fmadd_ps(a, w[n], acc[m][n]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) {
      float s = sum8(acc[m][n]);
      for (int64_t kk = k; kk < K; ++kk) s += A[m * lda + kk] * W[n * ldw + kk];
      float* c = C + m * ldc + n;
      *c = beta == 0.0f ? s : *c + s;
    }
}
#else
// Without AVX2 and FMA (the baseline build, other architectures): the same dot products,
// plainly. Only CPUs older than Haswell take this path for bf16 generation.
template <int MR, int NR>
void tile(float* C, const float* A, const float* W, int64_t K, int64_t lda, int64_t ldw,
          int64_t ldc, float beta) {
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += A[m * lda + k] * W[n * ldw + k];
      float* c = C + m * ldc + n;
      *c = beta == 0.0f ? s : *c + s;
    }
}
#endif

using TileFn = void (*)(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t,
                        float);

template <int MR>
constexpr TileFn tile_for(int nr) {
  return nr == 3 ? tile<MR, 3> : nr == 2 ? tile<MR, 2> : tile<MR, 1>;
}

TileFn tile_for(int mr, int nr) {
  switch (mr) {
    case 4:
      return tile_for<4>(nr);
    case 3:
      return tile_for<3>(nr);
    case 2:
      return tile_for<2>(nr);
    default:
      return tile_for<1>(nr);
  }
}

}  // namespace

void matmul_bf16_weights(float* C, const float* A, const uint16_t* W, int64_t M, int64_t N,
                         int64_t K, int64_t lda, int64_t ldw, int64_t ldc, float beta) {
  // Weight rows outside, rows inside: a block of NR weight rows comes from memory once,
  // widened to fp32 (12 KB for K = 1024) it stays in L1 while every tile of rows passes
  // over it; the rows (M·K·4 bytes, 64 KB for 32 rows of 512) stay in L2. Widening the
  // block once rather than in every tile's inner loop measured 58 against 53 GFLOP/s on
  // one AVX2 core (bench/kernels/decode_products.cpp, 32 rows of the 56M model).
  // Threads split the weights. Small products (a tiny model's decode step) run on one
  // thread: waking the team costs more than they do.
  const int64_t blocks = (N + kNR - 1) / kNR;
  const bool parallel = M * N * K >= (int64_t(1) << 18);
#pragma omp parallel if (parallel)
  {
    std::vector<float> wide(size_t(kNR * K));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t n0 = b * kNR;
      const int nr = int(std::min<int64_t>(kNR, N - n0));
      for (int n = 0; n < nr; ++n)
        for (int64_t k = 0; k < K; ++k)
          wide[size_t(n * K + k)] = bf16_to_f32(W[(n0 + n) * ldw + k]);
      for (int64_t m0 = 0; m0 < M; m0 += kMR) {
        const int mr = int(std::min<int64_t>(kMR, M - m0));
        tile_for(mr, nr)(C + m0 * ldc + n0, A + m0 * lda, wide.data(), K, lda, K, ldc, beta);
      }
    }
  }
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
