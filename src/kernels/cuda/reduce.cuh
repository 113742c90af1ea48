// Warp and block reductions and launch geometry shared by the kernels.
#pragma once
#include <cstdint>

// LATHE_CUDA_EMULATION: compiled by the host compiler with tests/kernels/cuda_emulation.h
// standing in for the CUDA runtime (the kernel tests that run without a GPU).
#ifdef LATHE_CUDA_EMULATION
#define LATHE_DYNAMIC_SHARED(T, name) T* name = ::lathe::emu::dynamic_shared<T>()
#define LATHE_LAUNCH(kernel, grid, block, shared, stream) \
  ::lathe::emu::Launch(grid, block, shared, kernel)
#else
#include <cuda_runtime.h>
#define LATHE_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
// kernel<<<grid, block, shared, stream>>>, written so that the emulation can take its place.
#define LATHE_LAUNCH(kernel, grid, block, shared, stream) kernel<<<grid, block, shared, stream>>>
#endif

namespace lathe::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` holds 32 values. A fixed tree: the same bits on every run.
template <class T>
__device__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : T(0);
  return warp_sum(v);
}

__device__ inline float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// Blocks for a grid-stride loop over n items: enough to fill any current GPU (132 SMs
// on H100 × 16 blocks of 256) without launching one block per 256 items of a 7B tensor.
inline unsigned grid_for(uint64_t n, unsigned threads) {
  const uint64_t want = (n + threads - 1) / threads;
  const uint64_t cap = 132 * 16;
  return unsigned(want < 1 ? 1 : (want > cap ? cap : want));
}

}  // namespace lathe::cuda
