#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/swiglu.h"
#include "kernels/cuda/swiglu_kernels.cuh"

namespace lathe::cuda {
namespace {
using namespace swiglu_kernels;
}  // namespace

void swiglu_forward(float* h, const float* gate_up, int64_t M, int64_t I, cudaStream_t stream) {
  const uint64_t n = uint64_t(M * I);
  if (n == 0) return;
  LATHE_LAUNCH(swiglu_forward_kernel, grid_for(n, 256), 256, 0, stream)(h, gate_up, M, I);
  CUDA_CHECK_LAUNCH();
}

void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t M, int64_t I,
                     cudaStream_t stream) {
  const uint64_t n = uint64_t(M * I);
  if (n == 0) return;
  LATHE_LAUNCH(swiglu_backward_kernel, grid_for(n, 256), 256, 0, stream)
  (dgate_up, dh, gate_up, M, I);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
