#include <cmath>

#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cross_entropy.h"
#include "kernels/cuda/cross_entropy_kernels.cuh"

namespace lathe::cuda {
namespace {
using namespace cross_entropy_kernels;
}  // namespace

void softmax_cross_entropy(double* row_loss, float* logits, const int32_t* targets, int64_t M,
                           int64_t V, float scale, cudaStream_t stream) {
  if (M == 0) return;
  LATHE_LAUNCH(softmax_cross_entropy_kernel, unsigned(M), kSoftmaxThreads, 0, stream)
  (row_loss, logits, targets, V, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
