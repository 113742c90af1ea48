#include "kernels/cpu/packed_matmul.h"

#include <algorithm>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "kernels/cpu/isa_namespace.h"

namespace lathe::cpu::LATHE_KERNEL_NS {
namespace {

constexpr int64_t kPanel = 16;  // weight rows per panel: two AVX2 vectors
// Rows per tile: 6 rows × 2 vectors = 12 accumulators, plus the 2 panel vectors and a
// broadcast row value, in AVX2's 16 registers. Each k-step is 12 FMAs for 2 panel loads
// and 6 broadcasts, which the load ports sustain at the FMA ports' rate.
constexpr int kRows = 6;

#if defined(__AVX2__) && defined(__FMA__)
template <int MR>
void tile(float* C, const float* A, const float* P, int64_t K, int64_t lda, int64_t ldc, int64_t nr,
          float beta) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(P + k * kPanel);
    const __m256 b1 = _mm256_loadu_ps(P + k * kPanel + 8);
#pragma GCC unroll 6
    for (int m = 0; m < MR; ++m) {
      const __m256 a = _mm256_broadcast_ss(A + m * lda + k);
      acc[m][0] = _mm256_fmadd_ps(a, b0, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(a, b1, acc[m][1]);
    }
  }
  // Unrolled like the loops above: indexed at run time, the accumulators would live in
  // memory, and GCC 12 then stores all 12 on every k-step (68 GFLOP/s on 32 rows of the
  // 56M model's products instead of 110-150).
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) {
    alignas(32) float out[kPanel];
    _mm256_store_ps(out, acc[m][0]);
    _mm256_store_ps(out + 8, acc[m][1]);
    float* c = C + m * ldc;
    for (int64_t j = 0; j < nr; ++j) c[j] = beta == 0.0f ? out[j] : c[j] + out[j];
  }
}
#else
// Without AVX2 and FMA: the same sums, plainly (only pre-Haswell CPUs take this path).
template <int MR>
void tile(float* C, const float* A, const float* P, int64_t K, int64_t lda, int64_t ldc, int64_t nr,
          float beta) {
  for (int m = 0; m < MR; ++m)
    for (int64_t j = 0; j < nr; ++j) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += A[m * lda + k] * P[k * kPanel + j];
      float* c = C + m * ldc + j;
      *c = beta == 0.0f ? s : *c + s;
    }
}
#endif

using TileFn = void (*)(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t,
                        float);
constexpr TileFn kTiles[kRows + 1] = {nullptr, tile<1>, tile<2>, tile<3>,
                                      tile<4>, tile<5>, tile<6>};

}  // namespace

size_t packed_weights_size(int64_t N, int64_t K) {
  return size_t((N + kPanel - 1) / kPanel * kPanel * K);
}

void pack_weights(float* panels, const float* W, int64_t N, int64_t K, int64_t ldw) {
  const int64_t count = (N + kPanel - 1) / kPanel;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < count; ++p) {
    float* P = panels + p * kPanel * K;
    for (int64_t j = 0; j < kPanel; ++j) {
      const int64_t n = p * kPanel + j;
      for (int64_t k = 0; k < K; ++k) P[k * kPanel + j] = n < N ? W[n * ldw + k] : 0.0f;
    }
  }
}

void matmul_packed(float* C, const float* A, const float* panels, int64_t M, int64_t N, int64_t K,
                   int64_t lda, int64_t ldc, float beta) {
  // Panels outside, rows inside: a panel (16 × K floats, 32 KB for K = 512) comes from
  // memory once and is read from cache by every tile of rows; the rows (M·K·4 bytes, 64 KB
  // for 32 rows of 512) stay in L2. Threads split the panels. Small products (a tiny
  // model's decode step) run on one thread: waking the team costs more than they do.
  const int64_t count = (N + kPanel - 1) / kPanel;
  const bool parallel = M * N * K >= (int64_t(1) << 18);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t p = 0; p < count; ++p) {
    const int64_t n0 = p * kPanel, nr = std::min(kPanel, N - n0);
    // Rows split evenly over the fewest tiles of at most 6: 32 rows as 6,6,5,5,5,5 rather
    // than five 6s and a 2, whose 4 accumulators cannot cover the FMA latency.
    const int64_t tiles = (M + kRows - 1) / kRows;
    for (int64_t t = 0, m0 = 0; t < tiles; ++t) {
      const int64_t mr = M / tiles + (t < M % tiles ? 1 : 0);
      kTiles[mr](C + m0 * ldc + n0, A + m0 * lda, panels + p * kPanel * K, K, lda, ldc, nr, beta);
      m0 += mr;
    }
  }
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
