// The pieces the attention kernels share: tile loads into shared memory, the per-warp
// online-softmax step over one tile of 32 keys, and the shared-memory opt-in.
//
// Layout of the work: one warp owns R query rows; lane j scores key j0 + j of the tile
// (a dot product over D against the key row in shared memory, padded to D + 1 floats so
// the 32 lanes hit 32 different banks), and for the output each lane owns the head
// dimensions d = lane + 32·t, t < DL, with the probabilities broadcast by shuffles.
#pragma once
#include <cstdint>

#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/reduce.cuh"

namespace lathe::cuda {

constexpr int kTile = 32;  // keys per shared-memory tile, one per lane

// Rows [row0, row0 + 32) of one head into shared memory, times scale: src row j is
// src + j * stride; rows at or past `rows` are zero. dst rows are ld floats apart.
__device__ inline void load_tile(float* dst, int ld, const float* src, int64_t stride, int row0,
                                 int rows, int D, float scale) {
  for (int e = threadIdx.x; e < kTile * D; e += blockDim.x) {
    const int r = e / D, d = e % D, j = row0 + r;
    dst[r * ld + d] = j < rows ? src[int64_t(j) * stride + d] * scale : 0.0f;
  }
}

// Online softmax of R rows over one tile of keys j0 .. j0+31, key row j at Ks + (j-j0)·ldk.
// Row k's query is q[k] (shared memory, already scaled by 1/√D) and it may see keys
// [lo[k], hi[k]] (inclusive); rows with active[k] false are skipped. m, l, o: the running
// max, sum and unnormalized output of each row.
template <int DL, int R>
__device__ void attend_tile(float (&o)[R][DL], float (&m)[R], float (&l)[R], const float* const* q,
                            const bool* active, const int* lo, const int* hi, const float* Ks,
                            int ldk, const float* Vs, int ldv, int D, int j0) {
  const int lane = threadIdx.x & 31, j = j0 + lane;
  bool any[R];
  bool none = true;
  for (int k = 0; k < R; ++k) {
    any[k] = active[k] && j0 <= hi[k] && j0 + kTile - 1 >= lo[k];
    none = none && !any[k];
  }
  if (none) return;  // warp-uniform
  float s[R];
  for (int k = 0; k < R; ++k) s[k] = 0.0f;
  const float* kr = Ks + lane * ldk;
  for (int d = 0; d < D; ++d) {
    const float kd = kr[d];
    for (int k = 0; k < R; ++k) s[k] += q[k][d] * kd;
  }
  float p[R];
  int jj_lo = kTile, jj_hi = -1;  // the union of the rows' visible keys in this tile
  for (int k = 0; k < R; ++k) {
    p[k] = 0.0f;
    if (!any[k]) continue;  // warp-uniform
    const bool valid = j >= lo[k] && j <= hi[k];
    const float tile_max = warp_max(valid ? s[k] : -INFINITY);  // finite: the tile meets [lo, hi]
    const float m_new = fmaxf(m[k], tile_max);
    // exp(-inf) = 0 on the first visible tile; the CPU's polynomial exp for the rest.
    const float corr = m[k] == -INFINITY ? 0.0f : hd::exp_poly(m[k] - m_new);
    p[k] = valid ? hd::exp_poly(s[k] - m_new) : 0.0f;
    l[k] = l[k] * corr + warp_sum(p[k]);
    m[k] = m_new;
    for (int t = 0; t < DL; ++t) o[k][t] *= corr;
    jj_lo = min(jj_lo, max(lo[k] - j0, 0));
    jj_hi = max(jj_hi, min(hi[k] - j0, kTile - 1));
  }
  for (int jj = jj_lo; jj <= jj_hi; ++jj) {
    float pj[R];
    for (int k = 0; k < R; ++k) pj[k] = __shfl_sync(kFullMask, p[k], jj);
    const float* vr = Vs + jj * ldv;
    for (int t = 0; t < DL; ++t) {
      const int d = lane + 32 * t;
      if (d < D) {
        const float v = vr[d];
        for (int k = 0; k < R; ++k) o[k][t] += pj[k] * v;
      }
    }
  }
}

// Kernels above 48 KB of dynamic shared memory must say so first (A100: up to 163 KB,
// H100: 227 KB per block).
template <class Kernel>
void allow_shared_memory(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

// Floats per lane for a head size: 1, 2, 4 or 8 (D up to 256).
inline int lanes_per_head(int64_t D) {
  LATHE_CHECK(D >= 1 && D <= 256, "CUDA attention supports head sizes 1..256, not ", D);
  return D <= 32 ? 1 : D <= 64 ? 2 : D <= 128 ? 4 : 8;
}

}  // namespace lathe::cuda
