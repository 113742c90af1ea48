// The embedding kernels, apart from their launchers (embedding.cu), so that the tests can also run
// them on the host (tests/kernels/cuda_emulation.h).
#pragma once
#include "kernels/cuda/reduce.cuh"

namespace lathe::cuda::embedding_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

// One block per row; threads stride over the C columns (coalesced on both sides).
__global__ void embedding_forward_kernel(float* out, const int32_t* ids, const float* table,
                                         int64_t C) {
  const int64_t m = blockIdx.x;
  const float* src = table + int64_t(ids[m]) * C;
  float* dst = out + m * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
}

// Atomics rather than a sort by token: a batch of 8k rows over a 32k-128k vocabulary
// rarely repeats a token often enough for contention to matter, and the table gradient
// is summed over micro-batches anyway. The order of the adds, and so the last bit, may
// differ between runs.
__global__ void embedding_backward_kernel(float* dtable, const int32_t* ids, const float* dout,
                                          int64_t C) {
  const int64_t m = blockIdx.x;
  float* dst = dtable + int64_t(ids[m]) * C;
  const float* src = dout + m * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(dst + c, src[c]);
}

}  // namespace
}  // namespace lathe::cuda::embedding_kernels
