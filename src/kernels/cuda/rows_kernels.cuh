// The row gather and scatter kernels, apart from their launchers (rows.cu), so that the
// tests can also run them on the host (tests/kernels/cuda_emulation.h).
#pragma once
#include "kernels/cuda/reduce.cuh"

namespace lathe::cuda::rows_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

// One block per row; threads stride over the C columns (coalesced on both sides). Plain
// stores, no atomics: scatter's rows are distinct, so every element has one writer and the
// result is the exact bytes of the source, as on the CPU.
__global__ void gather_rows_kernel(float* dst, const float* src, const int32_t* rows, int64_t C) {
  const int64_t i = blockIdx.x;
  const float* s = src + int64_t(rows[i]) * C;
  float* d = dst + i * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) d[c] = s[c];
}

__global__ void scatter_rows_kernel(float* dst, const float* src, const int32_t* rows, int64_t C) {
  const int64_t i = blockIdx.x;
  const float* s = src + i * C;
  float* d = dst + int64_t(rows[i]) * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) d[c] = s[c];
}

}  // namespace
}  // namespace lathe::cuda::rows_kernels
