// The cross entropy kernels, apart from their launchers (cross_entropy.cu), so that the tests can
// also run them on the host (tests/kernels/cuda_emulation.h).
#pragma once
#include <cmath>

#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/reduce.cuh"

namespace lathe::cuda::cross_entropy_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

constexpr int kSoftmaxThreads = 512;

// One block per row, three passes over it (max; exp and sum, stored in place; scale),
// fp32 throughout as the CPU: a 32000-wide row is 125 KB, so the second and third passes
// mostly hit L2.
__global__ void softmax_cross_entropy_kernel(double* row_loss, float* logits,
                                             const int32_t* targets, int64_t V, float scale) {
  __shared__ float scratch[32];
  const int64_t m = blockIdx.x;
  float* z = logits + m * V;
  const int32_t target = targets[m];
  if (target < 0) {
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) z[v] = 0.0f;
    if (threadIdx.x == 0) row_loss[m] = 0.0;
    return;
  }
  // -log p_t from the raw target logit (exp(z_t - max) underflows ~104 nats down).
  const float zt = z[target];
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, z[v]);
  mx = block_max(mx, scratch);
  float sum = 0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    const float e = hd::exp_poly(z[v] - mx);
    z[v] = e;
    sum += e;
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) row_loss[m] = double(logf(sum)) + double(mx) - double(zt);
  const float k = scale / sum;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    const float p = z[v] * k;
    z[v] = v == target ? p - scale : p;
  }
}

}  // namespace
}  // namespace lathe::cuda::cross_entropy_kernels
