// RMSNorm on the GPU; shapes and semantics as src/kernels/cpu/rmsnorm.h:
// forward writes out[M,C] and rstd[M]; backward accumulates dx += and dw +=.
#pragma once
#include <cstdint>

#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t M, int64_t C,
                     float eps, cudaStream_t stream);
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t M, int64_t C, cudaStream_t stream);

}  // namespace lathe::cuda
