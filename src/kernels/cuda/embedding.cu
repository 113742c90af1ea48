#include "kernels/cuda/check.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/embedding_kernels.cuh"

namespace lathe::cuda {
namespace {
using namespace embedding_kernels;
}  // namespace

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t M, int64_t C,
                       cudaStream_t stream) {
  if (M == 0) return;
  LATHE_LAUNCH(embedding_forward_kernel, unsigned(M), 256, 0, stream)(out, ids, table, C);
  CUDA_CHECK_LAUNCH();
}

void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t M, int64_t C,
                        cudaStream_t stream) {
  if (M == 0) return;
  LATHE_LAUNCH(embedding_backward_kernel, unsigned(M), 256, 0, stream)(dtable, ids, dout, C);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
