#include "kernels/cuda/check.h"
#include "kernels/cuda/rows.h"
#include "kernels/cuda/rows_kernels.cuh"

namespace lathe::cuda {
namespace {
using namespace rows_kernels;
}  // namespace

// One block of 256 threads per row: a row is 512-8192 floats (the hidden size), 2-32
// loads per thread; n is at most a chunk of rows (thousands), far below the grid limit.
void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C,
                 cudaStream_t stream) {
  if (n == 0) return;
  LATHE_LAUNCH(gather_rows_kernel, unsigned(n), 256, 0, stream)(dst, src, rows, C);
  CUDA_CHECK_LAUNCH();
}

void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C,
                  cudaStream_t stream) {
  if (n == 0) return;
  LATHE_LAUNCH(scatter_rows_kernel, unsigned(n), 256, 0, stream)(dst, src, rows, C);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
