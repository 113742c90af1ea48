#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/swiglu.h"

namespace lathe::cuda {
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

void swiglu_forward(float* h, const float* gate_up, int64_t M, int64_t I, cudaStream_t stream) {
  const uint64_t n = uint64_t(M * I);
  if (n == 0) return;
  swiglu_forward_kernel<<<grid_for(n, 256), 256, 0, stream>>>(h, gate_up, M, I);
  CUDA_CHECK_LAUNCH();
}

void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t M, int64_t I,
                     cudaStream_t stream) {
  const uint64_t n = uint64_t(M * I);
  if (n == 0) return;
  swiglu_backward_kernel<<<grid_for(n, 256), 256, 0, stream>>>(dgate_up, dh, gate_up, M, I);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
