// The elementwise kernels, apart from their launchers (elementwise.cu), so that the tests can also
// run them on the host (tests/kernels/cuda_emulation.h).
#pragma once
#include "kernels/common/elementwise_math.h"
#include "kernels/cuda/reduce.cuh"

namespace lathe::cuda::elementwise_kernels {
// Internal linkage: the tests compile these again for the host, in the same binary.
namespace {

__global__ void round_kernel(float* x, uint64_t n) {
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x)
    x[i] = hd::round_bf16(x[i]);
}

__global__ void pack_kernel(uint16_t* out, const float* in, int64_t rows, int64_t cols,
                            int64_t ld) {
  const int64_t n = rows * cols;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n;
       t += int64_t(gridDim.x) * blockDim.x)
    out[t] = hd::f32_to_bf16(in[(t / cols) * ld + t % cols]);
}

__global__ void widen_kernel(float* out, const uint16_t* in, uint64_t n) {
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x)
    out[i] = hd::bf16_to_f32(in[i]);
}

__global__ void add_kernel(float* y, const float* x, uint64_t n) {
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

constexpr uint64_t kChunk = 4096;  // elements per fp32 partial sum, as cpu/elementwise.cpp
constexpr int kSumThreads = 256;

__global__ void sum_squares_chunks(double* partial, const float* x, uint64_t n) {
  __shared__ float scratch[32];
  const uint64_t begin = uint64_t(blockIdx.x) * kChunk;
  const uint64_t end = begin + kChunk < n ? begin + kChunk : n;
  float s = 0;
  for (uint64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += x[i] * x[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = double(s);
}

__global__ void sum_doubles(double* partial, uint64_t count) {
  __shared__ double scratch[32];
  double s = 0;
  for (uint64_t i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = block_sum(s, scratch);
  __syncthreads();  // every thread has read its partials before thread 0 overwrites one
  if (threadIdx.x == 0) partial[0] = s;
}

}  // namespace
}  // namespace lathe::cuda::elementwise_kernels
