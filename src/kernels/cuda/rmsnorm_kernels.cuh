// The rmsnorm kernels, apart from their launchers (rmsnorm.cu), so that the tests can also run
// them on the host (tests/kernels/cuda_emulation.h).
#pragma once
#include "kernels/cuda/reduce.cuh"

namespace lathe::cuda::rmsnorm_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

constexpr int kNormThreads = 256;

// One block per row: the sum of squares is a block reduction (fp32, as the CPU).
__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* x, const float* w,
                                       int64_t C, float eps) {
  __shared__ float scratch[32];
  const int64_t m = blockIdx.x;
  const float* xr = x + m * C;
  float ss = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += xr[c] * xr[c];
  ss = block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / float(C) + eps);
  if (threadIdx.x == 0) rstd[m] = r;
  float* o = out + m * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) o[c] = xr[c] * r * w[c];
}

// dx, one block per row: dx += r · (g·w − x·r · mean(g·w·x̂)).
__global__ void rmsnorm_backward_dx_kernel(float* dx, const float* dout, const float* x,
                                           const float* w, const float* rstd, int64_t C) {
  __shared__ float scratch[32];
  const int64_t m = blockIdx.x;
  const float* xr = x + m * C;
  const float* g = dout + m * C;
  const float r = rstd[m];
  float dot = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dot += g[c] * w[c] * (xr[c] * r);
  dot = block_sum(dot, scratch) / float(C);
  float* d = dx + m * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) d[c] += r * (g[c] * w[c] - xr[c] * r * dot);
}

// dw[c] += Σ_m dout[m,c] · x[m,c] · rstd[m]: a block owns 32 columns (one warp wide, so
// loads are coalesced) and its 8 warps take every 8th row; the 8 partials are added in
// warp order. No atomics: the same bits on every run.
constexpr int kColWarps = 8;
__global__ void rmsnorm_backward_dw_kernel(float* dw, const float* dout, const float* x,
                                           const float* rstd, int64_t M, int64_t C) {
  __shared__ float partial[kColWarps][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t c = int64_t(blockIdx.x) * 32 + lane;
  float acc = 0;
  if (c < C)
    for (int64_t m = warp; m < M; m += kColWarps) acc += dout[m * C + c] * (x[m * C + c] * rstd[m]);
  partial[warp][lane] = acc;
  __syncthreads();
  if (warp == 0 && c < C) {
    float s = 0;
    for (int k = 0; k < kColWarps; ++k) s += partial[k][lane];
    dw[c] += s;
  }
}

}  // namespace
}  // namespace lathe::cuda::rmsnorm_kernels
