#include "kernels/common/elementwise_math.h"
#include "kernels/common/quant_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/quant.h"
#include "kernels/cuda/reduce.cuh"
#include "model/nf4.h"

namespace lathe::cuda {
namespace {

// The code book travels as a kernel argument (constant bank) and is copied to shared
// memory, where the data-dependent index costs no local-memory spill.
struct Nf4Book {
  float v[16];
};

__global__ void nf4_kernel(float* out, const uint8_t* codes, const float* absmax, uint64_t n,
                           uint64_t block, Nf4Book book) {
  __shared__ float table[16];
  if (threadIdx.x < 16) table[threadIdx.x] = book.v[threadIdx.x];
  __syncthreads();
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x)
    out[i] = table[hd::nf4_code(codes, i)] * absmax[i / block];
}

__global__ void log8_kernel(float* out, const uint8_t* q, const float* lo_step, uint64_t n,
                            uint64_t group) {
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x) {
    const uint64_t g = i / group;
    out[i] = hd::log8_value(q[i], lo_step[2 * g], lo_step[2 * g + 1]);
  }
}

__global__ void dropout_kernel(float* out, const float* in, uint64_t n, float keep_scale,
                               uint64_t key, uint64_t threshold, bool accumulate) {
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x) {
    // Rounded as on the CPU (no fused multiply-add): the same mask gives the same bits.
    const float v = hd::dropout_keep(key, i, threshold) ? __fmul_rn(in[i], keep_scale) : 0.0f;
    out[i] = accumulate ? __fadd_rn(out[i], v) : v;
  }
}

}  // namespace

void dequantize_bf16(float* out, const uint16_t* in, size_t n, cudaStream_t stream) {
  widen_bf16(out, in, n, stream);
}

void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n, int64_t block,
                    cudaStream_t stream) {
  if (n == 0) return;
  Nf4Book book;
  for (int i = 0; i < 16; ++i) book.v[i] = kNf4Values[i];
  nf4_kernel<<<grid_for(n, 256), 256, 0, stream>>>(out, codes, absmax, n, uint64_t(block), book);
  CUDA_CHECK_LAUNCH();
}

void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n, int64_t group,
                     cudaStream_t stream) {
  if (n == 0) return;
  log8_kernel<<<grid_for(n, 256), 256, 0, stream>>>(out, q, lo_step, n, uint64_t(group));
  CUDA_CHECK_LAUNCH();
}

void dropout(float* out, const float* in, size_t n, float p, uint64_t seed, bool accumulate,
             cudaStream_t stream) {
  if (n == 0) return;
  const float keep_scale = 1.0f / (1.0f - p);
  dropout_kernel<<<grid_for(n, 256), 256, 0, stream>>>(
      out, in, n, keep_scale, hd::dropout_key(seed), hd::dropout_threshold(p), accumulate);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
