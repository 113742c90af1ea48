// Decoding: one block per (row, KV head), one warp per query head of the group (GQA's
// heads share each K/V tile loaded into shared memory), the forward's online softmax over
// tiles of 32 cached positions.
#include <cmath>

#include "kernels/cuda/attention_decode.h"
#include "kernels/cuda/attention_tile.cuh"

namespace lathe::cuda {
namespace {

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
  extern __shared__ float smem[];
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

template <int DL>
void decode_with(float* out, const float* qkv, const float* k_cache, const float* v_cache,
                 const AttentionDecodeArgs& a, cudaStream_t stream) {
  const int64_t group = a.H / a.KV;
  LATHE_CHECK(group <= 32, "CUDA attention_decode supports up to 32 query heads per KV head, not ",
              group);
  const size_t smem = sizeof(float) * (group * a.D + kTile * (a.D + 1) + kTile * a.D);
  allow_shared_memory(decode_kernel<DL>, smem);
  const dim3 grid(unsigned(a.M), unsigned(a.KV));
  decode_kernel<DL><<<grid, unsigned(group * 32), smem, stream>>>(
      out, qkv, k_cache, v_cache, a.slot, a.pos, int(a.H), int(a.KV), int(a.D), a.capacity);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void attention_decode(float* out, const float* qkv, float* k_cache, float* v_cache,
                      const AttentionDecodeArgs& a, cudaStream_t stream) {
  if (a.M == 0) return;
  LATHE_CHECK(a.KV > 0 && a.H % a.KV == 0, "attention_decode: H = ", a.H,
              " must be a multiple of KV = ", a.KV);
  const uint64_t n = uint64_t(a.M * a.KV * a.D);
  cache_write_kernel<<<grid_for(n, 256), 256, 0, stream>>>(
      k_cache, v_cache, qkv, a.slot, a.pos, a.M, int(a.H), int(a.KV), int(a.D), a.capacity);
  CUDA_CHECK_LAUNCH();
  switch (lanes_per_head(a.D)) {
    case 1:
      return decode_with<1>(out, qkv, k_cache, v_cache, a, stream);
    case 2:
      return decode_with<2>(out, qkv, k_cache, v_cache, a, stream);
    case 4:
      return decode_with<4>(out, qkv, k_cache, v_cache, a, stream);
    default:
      return decode_with<8>(out, qkv, k_cache, v_cache, a, stream);
  }
}

}  // namespace lathe::cuda
