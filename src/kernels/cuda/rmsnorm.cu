#include "kernels/cuda/check.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rmsnorm_kernels.cuh"

namespace lathe::cuda {
namespace {
using namespace rmsnorm_kernels;
}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t M, int64_t C,
                     float eps, cudaStream_t stream) {
  if (M == 0) return;
  LATHE_LAUNCH(rmsnorm_forward_kernel, unsigned(M), kNormThreads, 0, stream)
  (out, rstd, x, w, C, eps);
  CUDA_CHECK_LAUNCH();
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t M, int64_t C, cudaStream_t stream) {
  if (M == 0) return;
  LATHE_LAUNCH(rmsnorm_backward_dx_kernel, unsigned(M), kNormThreads, 0, stream)
  (dx, dout, x, w, rstd, C);
  CUDA_CHECK_LAUNCH();
  LATHE_LAUNCH(rmsnorm_backward_dw_kernel, unsigned((C + 31) / 32), kColWarps * 32, 0, stream)
  (dw, dout, x, rstd, M, C);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
