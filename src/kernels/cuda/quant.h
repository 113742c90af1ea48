// Frozen-base dequantization and LoRA dropout on the GPU; semantics as
// src/kernels/cpu/quant.h (dropout draws the identical mask for the same seed).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

void dequantize_bf16(float* out, const uint16_t* in, size_t n, cudaStream_t stream);
void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n, int64_t block,
                    cudaStream_t stream);
void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n, int64_t group,
                     cudaStream_t stream);
void dropout(float* out, const float* in, size_t n, float p, uint64_t seed, bool accumulate,
             cudaStream_t stream);

}  // namespace lathe::cuda
