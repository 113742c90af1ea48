#include "kernels/cpu/packed_matmul_bf16.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define LATHE_BF16_DOT 1
#endif

#include "core/cpu_isa.h"
#include "core/dtype.h"
#include "kernels/cpu/isa_namespace.h"

namespace lathe::cpu::LATHE_KERNEL_NS {
namespace {

constexpr int64_t kPanel = 32;  // weight rows per panel: two 16-lane vectors
// Rows per tile: 12 rows × 2 vectors = 24 accumulators, plus the 2 panel vectors, in
// AVX-512's 32 registers; the rows' pairs are broadcast from memory inside the dot
// instruction. VDPBF16PS has a latency of 5-6 cycles at up to 2 per cycle, so it needs at
// least 12 independent sums in flight: tiles of 6 rows or more keep that many, and the
// rows are split over the fewest tiles (32 rows as 11, 11, 10).
constexpr int kRows = 12;

#if LATHE_BF16_DOT
// A row's pair (a[2q], a[2q+1]) as one 32-bit value, the lane VDPBF16PS broadcasts.
inline uint32_t pair_at(const uint16_t* a, int64_t q) {
  uint32_t v;
  std::memcpy(&v, a + 2 * q, sizeof v);
  return v;
}

template <int MR>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void tile(float* C, const uint16_t* A,
                                                                 const uint16_t* P, int64_t Q,
                                                                 int64_t lda, int64_t ldc,
                                                                 int64_t nr, float beta) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  for (int64_t q = 0; q < Q; ++q) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(P + q * 2 * kPanel);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(P + q * 2 * kPanel + kPanel);
#pragma GCC unroll 12
    for (int m = 0; m < MR; ++m) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(pair_at(A + m * lda, q)));
      acc[m][0] = _mm512_dpbf16_ps(acc[m][0], a, b0);
      acc[m][1] = _mm512_dpbf16_ps(acc[m][1], a, b1);
    }
  }
  // Unrolled as above so that the accumulators stay in registers (packed_matmul.cpp).
#pragma GCC unroll 12
  for (int m = 0; m < MR; ++m) {
    alignas(64) float out[kPanel];
    _mm512_store_ps(out, acc[m][0]);
    _mm512_store_ps(out + 16, acc[m][1]);
    float* c = C + m * ldc;
    for (int64_t j = 0; j < nr; ++j) c[j] = beta == 0.0f ? out[j] : c[j] + out[j];
  }
}
#else
// Without AVX-512 the same sums in the same order, plainly: callers use fp32 panels there
// (packed_bf16_products() is false), so this runs only in tests of the layout.
template <int MR>
void tile(float* C, const uint16_t* A, const uint16_t* P, int64_t Q, int64_t lda, int64_t ldc,
          int64_t nr, float beta) {
  // Row-major over the panel's 32 sums (the loop over j is the one vectorized): GCC 12 at
  // -O3 miscompiled the other order, a sum over q for each j, vectorized as an in-order
  // reduction of the two adds per pair (integer-valued operands summed to 149 for 148).
  for (int m = 0; m < MR; ++m) {
    float acc[kPanel] = {};
    for (int64_t q = 0; q < Q; ++q) {
      const uint16_t* p = P + q * 2 * kPanel;
      const float a0 = bf16_to_f32(A[m * lda + 2 * q]), a1 = bf16_to_f32(A[m * lda + 2 * q + 1]);
      for (int64_t j = 0; j < kPanel; ++j) {
        acc[j] += a1 * bf16_to_f32(p[2 * j + 1]);
        acc[j] += a0 * bf16_to_f32(p[2 * j]);
      }
    }
    float* c = C + m * ldc;
    for (int64_t j = 0; j < nr; ++j) c[j] = beta == 0.0f ? acc[j] : c[j] + acc[j];
  }
}
#endif

using TileFn = void (*)(float*, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t,
                        int64_t, float);
constexpr TileFn kTiles[kRows + 1] = {nullptr,  tile<1>,  tile<2>, tile<3>, tile<4>,
                                      tile<5>,  tile<6>,  tile<7>, tile<8>, tile<9>,
                                      tile<10>, tile<11>, tile<12>};

}  // namespace

bool packed_bf16_products() {
#if LATHE_BF16_DOT
  return cpu_has_avx512_bf16();
#else
  return false;
#endif
}

size_t packed_weights_bf16_size(int64_t N, int64_t K) {
  return size_t((N + kPanel - 1) / kPanel * kPanel * ((K + 1) / 2 * 2));
}

void pack_weights_bf16(uint16_t* panels, const float* W32, const uint16_t* W16, int64_t N,
                       int64_t K, int64_t ldw) {
  const int64_t count = (N + kPanel - 1) / kPanel, Q = (K + 1) / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < count; ++p) {
    uint16_t* P = panels + p * kPanel * 2 * Q;
    for (int64_t j = 0; j < kPanel; ++j) {
      const int64_t n = p * kPanel + j;
      uint16_t* dst = P + 2 * j;  // lane j % 16 of the pair block's vector j / 16
      for (int64_t k = 0; k < 2 * Q; ++k) {
        uint16_t v = 0;
        if (n < N && k < K) v = W16 ? W16[n * ldw + k] : f32_to_bf16(W32[n * ldw + k]);
        dst[(k / 2) * 2 * kPanel + (k % 2)] = v;
      }
    }
  }
}

void matmul_packed_bf16(float* C, const float* A, const uint16_t* panels, int64_t M, int64_t N,
                        int64_t K, int64_t lda, int64_t ldc, float beta) {
  // The rows as bf16 pairs (an odd K padded with a zero), once per product: M·K values,
  // a 1/N share of the product's work.
  const int64_t Q = (K + 1) / 2, ldb = 2 * Q;
  thread_local std::vector<uint16_t> rows;
  rows.assign(size_t(M * ldb), 0);
  for (int64_t m = 0; m < M; ++m)
    convert_f32_to_bf16(A + m * lda, rows.data() + m * ldb, size_t(K));
  // Panels outside, rows inside, as in packed_matmul.cpp: a panel (32 × K bf16, 32 KB for
  // K = 512) comes from memory once and is read from cache by every tile of rows.
  const int64_t count = (N + kPanel - 1) / kPanel;
  const bool parallel = M * N * K >= (int64_t(1) << 18);
  const uint16_t* R = rows.data();
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t p = 0; p < count; ++p) {
    const int64_t n0 = p * kPanel, nr = std::min(kPanel, N - n0);
    const int64_t tiles = (M + kRows - 1) / kRows;  // rows split evenly: 32 as 11, 11, 10
    for (int64_t t = 0, m0 = 0; t < tiles; ++t) {
      const int64_t mr = M / tiles + (t < M % tiles ? 1 : 0);
      kTiles[mr](C + m0 * ldc + n0, R + m0 * ldb, panels + p * kPanel * 2 * Q, Q, ldb, ldc, nr,
                 beta);
      m0 += mr;
    }
  }
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
