// The rope kernels, apart from their launchers (rope.cu), so that the tests can also run
// them on the host (tests/kernels/cuda_emulation.h).
#pragma once
#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/reduce.cuh"

namespace lathe::cuda::rope_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

// One thread per rotated pair (m, head, i < D/2).
__global__ void rope_kernel(float* x, const int32_t* pos, const float* cos_sin, int64_t M,
                            int64_t heads, int64_t D, int64_t row_stride, bool inverse) {
  const int64_t half = D / 2, n = M * heads * half;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t % half, h = (t / half) % heads, m = t / (half * heads);
    const float* cs = cos_sin + int64_t(pos[m]) * D;
    float* v = x + m * row_stride + h * D;
    hd::rope_rotate(&v[i], &v[half + i], cs[i], cs[half + i], inverse);
  }
}

}  // namespace
}  // namespace lathe::cuda::rope_kernels
