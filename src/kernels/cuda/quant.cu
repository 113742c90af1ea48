#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/quant.h"
#include "kernels/cuda/quant_kernels.cuh"
#include "core/nf4_table.h"

namespace lathe::cuda {
namespace {
using namespace quant_kernels;
}  // namespace

void dequantize_bf16(float* out, const uint16_t* in, size_t n, cudaStream_t stream) {
  widen_bf16(out, in, n, stream);
}

void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n, int64_t block,
                    cudaStream_t stream) {
  if (n == 0) return;
  Nf4Book book;
  for (int i = 0; i < 16; ++i) book.v[i] = kNf4Values[i];
  LATHE_LAUNCH(nf4_kernel, grid_for(n, 256), 256, 0, stream)
  (out, codes, absmax, n, uint64_t(block), book);
  CUDA_CHECK_LAUNCH();
}

void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n, int64_t group,
                     cudaStream_t stream) {
  if (n == 0) return;
  LATHE_LAUNCH(log8_kernel, grid_for(n, 256), 256, 0, stream)(out, q, lo_step, n, uint64_t(group));
  CUDA_CHECK_LAUNCH();
}

void dropout(float* out, const float* in, size_t n, float p, uint64_t seed, bool accumulate,
             cudaStream_t stream) {
  if (n == 0) return;
  const float keep_scale = 1.0f / (1.0f - p);
  LATHE_LAUNCH(dropout_kernel, grid_for(n, 256), 256, 0, stream)
  (out, in, n, keep_scale, hd::dropout_key(seed), hd::dropout_threshold(p), accumulate);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
