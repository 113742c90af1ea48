#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/adamw_kernels.cuh"
#include "kernels/cuda/check.h"

namespace lathe::cuda {
namespace {
using namespace adamw_kernels;
}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, float* rounded, uint16_t* bits,
                size_t n, const AdamWArgs& a, cudaStream_t stream) {
  if (n == 0) return;
  const hd::AdamWConsts k = hd::adamw_consts(a);
  LATHE_LAUNCH(adamw_kernel, grid_for(n, 256), 256, 0, stream)(p, g, m, v, rounded, bits, n, k);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
