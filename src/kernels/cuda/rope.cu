#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/rope_kernels.cuh"

namespace lathe::cuda {
namespace {
using namespace rope_kernels;
}  // namespace

void rope_apply(float* x, const int32_t* pos, const float* cos_sin, int64_t M, int64_t heads,
                int64_t D, int64_t row_stride, bool inverse, cudaStream_t stream) {
  const uint64_t n = uint64_t(M * heads * (D / 2));
  if (n == 0) return;
  LATHE_LAUNCH(rope_kernel, grid_for(n, 256), 256, 0, stream)
  (x, pos, cos_sin, M, heads, D, row_stride, inverse);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
