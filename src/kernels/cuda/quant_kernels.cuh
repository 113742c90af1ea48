// The quant kernels, apart from their launchers (quant.cu), so that the tests can also run
// them on the host (tests/kernels/cuda_emulation.h).
#pragma once
#include "kernels/common/elementwise_math.h"
#include "kernels/common/quant_math.h"
#include "kernels/cuda/reduce.cuh"
#include "core/nf4_table.h"

namespace lathe::cuda::quant_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
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
}  // namespace lathe::cuda::quant_kernels
