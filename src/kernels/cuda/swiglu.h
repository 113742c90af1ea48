// SwiGLU on the GPU; semantics as src/kernels/cpu/swiglu.h: gate_up [M, 2I] (gate, then
// up), h [M, I]; the backward writes dgate_up.
#pragma once
#include <cstdint>

#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

void swiglu_forward(float* h, const float* gate_up, int64_t M, int64_t I, cudaStream_t stream);
void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t M, int64_t I,
                     cudaStream_t stream);

}  // namespace lathe::cuda
