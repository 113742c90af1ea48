// Flash-style attention in fp32 (FlashAttention-2's split of the work):
//   forward   block = 32 query rows of one (b, h), 8 warps × 4 rows; K/V tiles of 32 keys
//             stream through shared memory; online softmax; lse = m + log(l) saved.
//   backward  delta = rowsum(dO ∘ O) first; then dq with the forward's geometry (P from
//             lse, no softmax state), and dk/dv with one block per (b, KV head, 32 keys)
//             that walks every query row and head of the group that can see those keys.
//             Each output is written by exactly one thread: no atomics, same bits each run.
// No T×T storage anywhere; shared memory per block is O(32·D).
// The kernels, apart from their launchers (attention.cu), so that the tests can also run
// them on the host through an emulation of the CUDA execution model
// (tests/kernels/cuda_emulation.h).
#pragma once
#include <cmath>

#include "kernels/cuda/attention_tile.cuh"

namespace lathe::cuda::attention_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

constexpr int kWarps = 8, kRowsPerWarp = 4, kBlockRows = kWarps * kRowsPerWarp;
constexpr int kKvWarps = 4;

// Dynamic shared memory of each kernel, in bytes, for head size D.
inline size_t forward_shared_bytes(int64_t D) {
  return sizeof(float) * size_t(kBlockRows * D + kTile * (D + 1) + kTile * D);
}
inline size_t dq_shared_bytes(int64_t D) {
  return sizeof(float) * size_t(2 * kBlockRows * D + 2 * kTile * (D + 1));
}
inline size_t dkv_shared_bytes(int64_t D) {
  return sizeof(float) * size_t(2 * kTile * (D + 1) + 2 * kTile * D + 2 * kTile * (kTile + 1));
}

struct Geometry {
  int T, H, KV, D;
  int64_t S;  // floats per token of qkv
  const int32_t* doc_start;
  __device__ int start(int b, int i) const { return doc_start ? doc_start[int64_t(b) * T + i] : 0; }
};

// Keys the block's rows may see start at the smallest doc_start among them.
__device__ int block_key_start(const Geometry& g, int b, int i0, int* shared_min) {
  if (threadIdx.x == 0) *shared_min = i0;
  __syncthreads();
  if (threadIdx.x < kBlockRows && i0 + int(threadIdx.x) < g.T)
    atomicMin(shared_min, g.start(b, i0 + threadIdx.x));
  __syncthreads();
  return *shared_min;
}

template <int DL>
__global__ void __launch_bounds__(kWarps * 32)
    attention_forward_kernel(float* out, float* lse, const float* qkv, Geometry g) {
  LATHE_DYNAMIC_SHARED(float, smem);
  __shared__ int shared_min;
  const int D = g.D, b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * kBlockRows;
  const int kvh = h / (g.H / g.KV);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float* Qs = smem;                  // [32][D], scaled by 1/√D
  float* Ks = Qs + kBlockRows * D;   // [32][D+1]
  float* Vs = Ks + kTile * (D + 1);  // [32][D]
  const float* base = qkv + int64_t(b) * g.T * g.S;
  load_tile(Qs, D, base + int64_t(i0) * g.S + int64_t(h) * D, g.S, 0, g.T - i0, D,
            1.0f / sqrtf(float(D)));
  const int jlo = block_key_start(g, b, i0, &shared_min);
  const int jhi = min(i0 + kBlockRows, g.T) - 1;

  const float* q[kRowsPerWarp];
  bool active[kRowsPerWarp];
  int lo[kRowsPerWarp], hi[kRowsPerWarp];
  float m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][DL];
  for (int k = 0; k < kRowsPerWarp; ++k) {
    const int r = warp * kRowsPerWarp + k, i = i0 + r;
    q[k] = Qs + r * D;
    active[k] = i < g.T;
    lo[k] = active[k] ? g.start(b, i) : 0;
    hi[k] = i;
    m[k] = -INFINITY;
    l[k] = 0.0f;
    for (int t = 0; t < DL; ++t) o[k][t] = 0.0f;
  }
  const float* kbase = base + int64_t(g.H + kvh) * D;
  const float* vbase = base + int64_t(g.H + g.KV + kvh) * D;
  for (int j0 = jlo; j0 <= jhi; j0 += kTile) {
    __syncthreads();  // the previous tile is no longer read
    load_tile(Ks, D + 1, kbase, g.S, j0, g.T, D, 1.0f);
    load_tile(Vs, D, vbase, g.S, j0, g.T, D, 1.0f);
    __syncthreads();
    attend_tile<DL, kRowsPerWarp>(o, m, l, q, active, lo, hi, Ks, D + 1, Vs, D, D, j0);
  }
  for (int k = 0; k < kRowsPerWarp; ++k) {
    if (!active[k]) continue;
    const int i = i0 + warp * kRowsPerWarp + k;
    float* dst = out + (int64_t(b) * g.T + i) * g.H * D + int64_t(h) * D;
    const float inv = 1.0f / l[k];
    for (int t = 0; t < DL; ++t) {
      const int d = lane + 32 * t;
      if (d < D) dst[d] = o[k][t] * inv;
    }
    if (lane == 0) lse[(int64_t(b) * g.H + h) * g.T + i] = m[k] + logf(l[k]);
  }
}

// delta[b, h, i] = Σ_d dO · O, one warp per (token, head).
__global__ void attention_delta_kernel(float* delta, const float* dout, const float* out, int B,
                                       int T, int H, int D) {
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (w >= int64_t(B) * T * H) return;  // warp-uniform
  const int64_t token = w / H;
  const int h = int(w % H);
  const float* dO = dout + token * H * D + int64_t(h) * D;
  const float* O = out + token * H * D + int64_t(h) * D;
  float s = 0;
  for (int d = lane; d < D; d += 32) s += dO[d] * O[d];
  s = warp_sum(s);
  if (lane == 0) {
    const int64_t b = token / T, i = token % T;
    delta[(b * H + h) * T + i] = s;
  }
}

// dq: the forward's geometry. Lane j recomputes s = q·k_j and dp = dO·v_j for its key;
// ds = p (dp − delta) / √D; dq += Σ_j ds_j k_j with ds broadcast by shuffles.
template <int DL>
__global__ void __launch_bounds__(kWarps * 32)
    attention_dq_kernel(float* dqkv, const float* dout, const float* lse, const float* delta,
                        const float* qkv, Geometry g) {
  LATHE_DYNAMIC_SHARED(float, smem);
  __shared__ int shared_min;
  const int D = g.D, b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * kBlockRows;
  const int kvh = h / (g.H / g.KV);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float scale = 1.0f / sqrtf(float(D));
  float* Qs = smem;                  // [32][D] (unscaled)
  float* dOs = Qs + kBlockRows * D;  // [32][D]
  float* Ks = dOs + kBlockRows * D;  // [32][D+1]
  float* Vs = Ks + kTile * (D + 1);  // [32][D+1]
  const float* base = qkv + int64_t(b) * g.T * g.S;
  load_tile(Qs, D, base + int64_t(i0) * g.S + int64_t(h) * D, g.S, 0, g.T - i0, D, 1.0f);
  load_tile(dOs, D, dout + (int64_t(b) * g.T + i0) * g.H * D + int64_t(h) * D, int64_t(g.H) * D, 0,
            g.T - i0, D, 1.0f);
  const int jlo = block_key_start(g, b, i0, &shared_min);
  const int jhi = min(i0 + kBlockRows, g.T) - 1;

  constexpr int R = kRowsPerWarp;
  bool active[R];
  int lo[R], hi[R];
  float row_lse[R], row_delta[R], dq[R][DL];
  for (int k = 0; k < R; ++k) {
    const int i = i0 + warp * R + k;
    active[k] = i < g.T;
    lo[k] = active[k] ? g.start(b, i) : 0;
    hi[k] = i;
    const int64_t at = (int64_t(b) * g.H + h) * g.T + (active[k] ? i : 0);
    row_lse[k] = lse[at];
    row_delta[k] = delta[at];
    for (int t = 0; t < DL; ++t) dq[k][t] = 0.0f;
  }
  const float* kbase = base + int64_t(g.H + kvh) * D;
  const float* vbase = base + int64_t(g.H + g.KV + kvh) * D;
  for (int j0 = jlo; j0 <= jhi; j0 += kTile) {
    __syncthreads();
    load_tile(Ks, D + 1, kbase, g.S, j0, g.T, D, 1.0f);
    load_tile(Vs, D + 1, vbase, g.S, j0, g.T, D, 1.0f);
    __syncthreads();
    const int j = j0 + lane;
    float s[R], dp[R];
    for (int k = 0; k < R; ++k) s[k] = dp[k] = 0.0f;
    const float* kr = Ks + lane * (D + 1);
    const float* vr = Vs + lane * (D + 1);
    for (int d = 0; d < D; ++d) {
      const float kd = kr[d], vd = vr[d];
      for (int k = 0; k < R; ++k) {
        const int r = warp * R + k;
        s[k] += Qs[r * D + d] * kd;
        dp[k] += dOs[r * D + d] * vd;
      }
    }
    float ds[R];
    for (int k = 0; k < R; ++k) {
      const bool valid = active[k] && j >= lo[k] && j <= hi[k];
      const float p = valid ? hd::exp_poly(s[k] * scale - row_lse[k]) : 0.0f;
      ds[k] = p * (dp[k] - row_delta[k]) * scale;
    }
    for (int jj = 0; jj < kTile; ++jj) {
      float dsj[R];
      for (int k = 0; k < R; ++k) dsj[k] = __shfl_sync(kFullMask, ds[k], jj);
      const float* kj = Ks + jj * (D + 1);
      for (int t = 0; t < DL; ++t) {
        const int d = lane + 32 * t;
        if (d < D) {
          const float kd = kj[d];
          for (int k = 0; k < R; ++k) dq[k][t] += dsj[k] * kd;
        }
      }
    }
  }
  for (int k = 0; k < R; ++k) {
    if (!active[k]) continue;
    const int i = i0 + warp * R + k;
    float* dst = dqkv + (int64_t(b) * g.T + i) * g.S + int64_t(h) * D;
    for (int t = 0; t < DL; ++t) {
      const int d = lane + 32 * t;
      if (d < D) dst[d] = dq[k][t];
    }
  }
}

// dk, dv: block = (32 keys j0.., KV head, b), 4 warps. For every query head of the group
// and every chunk of 32 query rows from j0 on (earlier rows cannot see these keys):
//   phase 1: P and dS of the 32×32 chunk into shared memory (warp w: rows w, w+4, ...,
//            lane: key), as in dq;
//   phase 2: thread (warp w, lane j) adds Σ_r P[r][j] dO[r][d] to dv[j][d] and
//            Σ_r dS[r][j] q[r][d] to dk[j][d] for its d = w + 4·t, in registers.
template <int DL>
__global__ void __launch_bounds__(kKvWarps * 32)
    attention_dkv_kernel(float* dqkv, const float* dout, const float* lse, const float* delta,
                         const float* qkv, Geometry g) {
  constexpr int DQ = 8 * DL;  // ≥ D / kKvWarps
  LATHE_DYNAMIC_SHARED(float, smem);
  __shared__ float row_lse[kTile], row_delta[kTile];
  __shared__ int row_start[kTile];
  const int D = g.D, b = blockIdx.z, kvh = blockIdx.y, j0 = blockIdx.x * kTile;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, group = g.H / g.KV;
  const float scale = 1.0f / sqrtf(float(D));
  float* Ks = smem;                  // [32][D+1]
  float* Vs = Ks + kTile * (D + 1);  // [32][D+1]
  float* Qs = Vs + kTile * (D + 1);  // [32][D]
  float* dOs = Qs + kTile * D;       // [32][D]
  float* Ps = dOs + kTile * D;       // [32][33]
  float* dSs = Ps + kTile * (kTile + 1);
  const float* base = qkv + int64_t(b) * g.T * g.S;
  load_tile(Ks, D + 1, base + int64_t(g.H + kvh) * D, g.S, j0, g.T, D, 1.0f);
  load_tile(Vs, D + 1, base + int64_t(g.H + g.KV + kvh) * D, g.S, j0, g.T, D, 1.0f);
  const int j = j0 + lane;
  const int j_last = min(j0 + kTile, g.T) - 1;
  float dk[DQ], dv[DQ];
  for (int t = 0; t < DQ; ++t) dk[t] = dv[t] = 0.0f;

  for (int h = kvh * group; h < (kvh + 1) * group; ++h)
    for (int c0 = j0; c0 < g.T; c0 += kTile) {
      __syncthreads();  // the previous chunk is no longer read
      const int ci = c0 + int(threadIdx.x);
      bool sees = false;
      if (threadIdx.x < kTile && ci < g.T) {
        const int64_t at = (int64_t(b) * g.H + h) * g.T + ci;
        row_start[threadIdx.x] = g.start(b, ci);
        row_lse[threadIdx.x] = lse[at];
        row_delta[threadIdx.x] = delta[at];
        sees = row_start[threadIdx.x] <= j_last;
      }
      if (!__syncthreads_or(sees)) continue;  // no row of this chunk sees these keys
      load_tile(Qs, D, base + int64_t(h) * D, g.S, c0, g.T, D, 1.0f);
      load_tile(dOs, D, dout + int64_t(b) * g.T * g.H * D + int64_t(h) * D, int64_t(g.H) * D, c0,
                g.T, D, 1.0f);
      __syncthreads();
      // Phase 1: rows r = warp + kKvWarps·k.
      constexpr int R = kTile / kKvWarps;
      float s[R], dp[R];
      for (int k = 0; k < R; ++k) s[k] = dp[k] = 0.0f;
      const float* kr = Ks + lane * (D + 1);
      const float* vr = Vs + lane * (D + 1);
      for (int d = 0; d < D; ++d) {
        const float kd = kr[d], vd = vr[d];
        for (int k = 0; k < R; ++k) {
          const int r = warp + kKvWarps * k;
          s[k] += Qs[r * D + d] * kd;
          dp[k] += dOs[r * D + d] * vd;
        }
      }
      for (int k = 0; k < R; ++k) {
        const int r = warp + kKvWarps * k, i = c0 + r;
        const bool valid = i < g.T && j < g.T && j >= row_start[r] && j <= i;
        const float p = valid ? hd::exp_poly(s[k] * scale - row_lse[r]) : 0.0f;
        Ps[r * (kTile + 1) + lane] = p;
        dSs[r * (kTile + 1) + lane] = p * (dp[k] - row_delta[r]) * scale;
      }
      __syncthreads();
      // Phase 2.
      for (int r = 0; r < kTile; ++r) {
        const float p = Ps[r * (kTile + 1) + lane], ds = dSs[r * (kTile + 1) + lane];
        for (int t = 0; t < DQ; ++t) {
          const int d = warp + kKvWarps * t;
          if (d < D) {
            dv[t] += p * dOs[r * D + d];
            dk[t] += ds * Qs[r * D + d];
          }
        }
      }
    }
  if (j >= g.T) return;
  float* row = dqkv + (int64_t(b) * g.T + j) * g.S;
  for (int t = 0; t < DQ; ++t) {
    const int d = warp + kKvWarps * t;
    if (d < D) {
      row[int64_t(g.H + kvh) * D + d] = dk[t];
      row[int64_t(g.H + g.KV + kvh) * D + d] = dv[t];
    }
  }
}

}  // namespace
}  // namespace lathe::cuda::attention_kernels
