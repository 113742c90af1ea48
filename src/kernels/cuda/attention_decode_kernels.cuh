// Decoding: one block per (row, KV head), one warp per query head of the group (GQA's
// heads share each K/V tile loaded into shared memory), the forward's online softmax over
// tiles of 32 cached positions.
// The kernels, apart from their launchers (attention_decode.cu); see attention_kernels.cuh.
#pragma once
#include <cmath>

#include "kernels/cuda/attention_tile.cuh"

namespace lathe::cuda::decode_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

// Dynamic shared memory of decode_kernel, in bytes.
inline size_t decode_shared_bytes(int64_t group, int64_t D) {
  return sizeof(float) * size_t(group * D + kTile * (D + 1) + kTile * D);
}

// Every new row's k and v into the cache before any query reads it (a prefill row sees the
// keys of its prompt's earlier rows): a separate launch on the same stream orders that.
__global__ void cache_write_kernel(float* k_cache, float* v_cache, const float* qkv,
                                   const int32_t* slot, const int32_t* pos, int64_t M, int H,
                                   int KV, int D, int64_t capacity) {
  const int64_t S = int64_t(H + 2 * KV) * D, n = M * KV * D;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = t % D, g = (t / D) % KV, m = t / (int64_t(D) * KV);
    const int64_t at = ((int64_t(slot[m]) * KV + g) * capacity + pos[m]) * D + d;
    k_cache[at] = qkv[m * S + (H + g) * D + d];
    v_cache[at] = qkv[m * S + (H + KV + g) * D + d];
  }
}

template <int DL>
__global__ void decode_kernel(float* out, const float* qkv, const float* k_cache,
                              const float* v_cache, const int32_t* slot, const int32_t* pos, int H,
                              int KV, int D, int64_t capacity) {
  LATHE_DYNAMIC_SHARED(float, smem);
  const int m = blockIdx.x, kvh = blockIdx.y, group = H / KV;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t S = int64_t(H + 2 * KV) * D;
  float* Qs = smem;                  // [group][D], scaled
  float* Ks = Qs + group * D;        // [32][D+1]
  float* Vs = Ks + kTile * (D + 1);  // [32][D]
  for (int e = threadIdx.x; e < group * D; e += blockDim.x)
    Qs[e] = qkv[m * S + int64_t(kvh) * group * D + e] * (1.0f / sqrtf(float(D)));
  const int n = pos[m] + 1;
  const int64_t base = (int64_t(slot[m]) * KV + kvh) * capacity * D;
  const float* q[1] = {Qs + warp * D};
  const bool active[1] = {true};
  const int lo[1] = {0}, hi[1] = {n - 1};
  float mx[1] = {-INFINITY}, l[1] = {0.0f}, o[1][DL];
  for (int t = 0; t < DL; ++t) o[0][t] = 0.0f;
  for (int j0 = 0; j0 < n; j0 += kTile) {
    __syncthreads();
    load_tile(Ks, D + 1, k_cache + base, D, j0, n, D, 1.0f);
    load_tile(Vs, D, v_cache + base, D, j0, n, D, 1.0f);
    __syncthreads();
    attend_tile<DL, 1>(o, mx, l, q, active, lo, hi, Ks, D + 1, Vs, D, D, j0);
  }
  float* dst = out + int64_t(m) * H * D + int64_t(kvh * group + warp) * D;
  const float inv = 1.0f / l[0];
  for (int t = 0; t < DL; ++t) {
    const int d = lane + 32 * t;
    if (d < D) dst[d] = o[0][t] * inv;
  }
}

}  // namespace
}  // namespace lathe::cuda::decode_kernels
