// The swiglu kernels, apart from their launchers (swiglu.cu), so that the tests can also run
// them on the host (tests/kernels/cuda_emulation.h).
#pragma once
#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/reduce.cuh"

namespace lathe::cuda::swiglu_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

__global__ void swiglu_forward_kernel(float* h, const float* gate_up, int64_t M, int64_t I) {
  const int64_t n = M * I;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = t / I, i = t % I;
    const float* g = gate_up + m * 2 * I;
    h[t] = hd::swiglu(g[i], g[I + i]);
  }
}

__global__ void swiglu_backward_kernel(float* dgate_up, const float* dh, const float* gate_up,
                                       int64_t M, int64_t I) {
  const int64_t n = M * I;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = t / I, i = t % I;
    const float* g = gate_up + m * 2 * I;
    float* dg = dgate_up + m * 2 * I;
    hd::swiglu_grad(g[i], g[I + i], dh[t], &dg[i], &dg[I + i]);
  }
}

}  // namespace
}  // namespace lathe::cuda::swiglu_kernels
