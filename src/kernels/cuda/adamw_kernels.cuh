// The adamw kernels, apart from their launchers (adamw.cu), so that the tests can also run
// them on the host (tests/kernels/cuda_emulation.h).
#pragma once
#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/reduce.cuh"

namespace lathe::cuda::adamw_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

// Memory bound (7 fp32 streams, 28 bytes per parameter, plus 6 with the bf16 copies);
// the null tests on rounded/bits are uniform across the grid, so they cost no divergence.
__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, float* rounded,
                             uint16_t* bits, uint64_t n, hd::AdamWConsts k) {
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x) {
    float mi = m[i], vi = v[i];
    const float pi = hd::adamw_update(p[i], g[i], &mi, &vi, k);
    m[i] = mi;
    v[i] = vi;
    p[i] = pi;
    if (rounded || bits) {
      const uint16_t b = hd::f32_to_bf16(pi);
      if (rounded) rounded[i] = hd::bf16_to_f32(b);
      if (bits) bits[i] = b;
    }
  }
}

}  // namespace
}  // namespace lathe::cuda::adamw_kernels
