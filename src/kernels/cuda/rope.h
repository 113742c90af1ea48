// RoPE on the GPU, in place; semantics as src/kernels/cpu/rope.h (the same cos_sin
// table [pos, D]: cos in the first half, sin in the second; inverse = the backward).
#pragma once
#include <cstdint>

#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

void rope_apply(float* x, const int32_t* pos, const float* cos_sin, int64_t M, int64_t heads,
                int64_t D, int64_t row_stride, bool inverse, cudaStream_t stream);

}  // namespace lathe::cuda
