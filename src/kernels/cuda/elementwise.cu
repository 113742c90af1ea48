#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/elementwise_kernels.cuh"

namespace lathe::cuda {
namespace {
using namespace elementwise_kernels;
}  // namespace

void round_to_bf16(float* x, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  LATHE_LAUNCH(round_kernel, grid_for(n, 256), 256, 0, stream)(x, n);
  CUDA_CHECK_LAUNCH();
}

void pack_bf16(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld,
               cudaStream_t stream) {
  const uint64_t n = uint64_t(rows * cols);
  if (n == 0) return;
  LATHE_LAUNCH(pack_kernel, grid_for(n, 256), 256, 0, stream)(out, in, rows, cols, ld);
  CUDA_CHECK_LAUNCH();
}

void widen_bf16(float* out, const uint16_t* in, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  LATHE_LAUNCH(widen_kernel, grid_for(n, 256), 256, 0, stream)(out, in, n);
  CUDA_CHECK_LAUNCH();
}

void add(float* y, const float* x, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  LATHE_LAUNCH(add_kernel, grid_for(n, 256), 256, 0, stream)(y, x, n);
  CUDA_CHECK_LAUNCH();
}

size_t sum_squares_scratch(size_t n) { return n == 0 ? 1 : (n + kChunk - 1) / kChunk; }

void sum_squares(double* partial, const float* x, size_t n, cudaStream_t stream) {
  if (n == 0) {
    CUDA_CHECK(cudaMemsetAsync(partial, 0, sizeof(double), stream));
    return;
  }
  const uint64_t chunks = sum_squares_scratch(n);
  // Grid dimension x allows 2^31 - 1 blocks: 8.8e12 elements, beyond any device memory.
  LATHE_LAUNCH(sum_squares_chunks, unsigned(chunks), kSumThreads, 0, stream)(partial, x, n);
  CUDA_CHECK_LAUNCH();
  LATHE_LAUNCH(sum_doubles, 1, 1024, 0, stream)(partial, chunks);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
