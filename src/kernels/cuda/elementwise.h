// Elementwise kernels on the GPU; semantics as src/kernels/cpu/elementwise.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

void round_to_bf16(float* x, size_t n, cudaStream_t stream);
void pack_bf16(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld,
               cudaStream_t stream);
void add(float* y, const float* x, size_t n, cudaStream_t stream);  // y += x
// bf16 bits to fp32 (the inverse of pack_bf16 for a dense matrix).
void widen_bf16(float* out, const uint16_t* in, size_t n, cudaStream_t stream);

// Σ x² in two deterministic stages: fp32 sums over blocks of 4096 elements (the CPU's
// blocks), then those added in fp64 by one block in a fixed tree. `partial` is device
// scratch of sum_squares_scratch(n) doubles; the result is left in partial[0].
size_t sum_squares_scratch(size_t n);
void sum_squares(double* partial, const float* x, size_t n, cudaStream_t stream);

}  // namespace lathe::cuda
