// Fused AdamW step on the GPU; semantics as src/kernels/cpu/adamw.h (PyTorch AdamW,
// grad_scale folded in, optional bf16 copies in `rounded` and `bits`).
#pragma once
#include <cstddef>
#include <cstdint>

#include "backend/backend.h"
#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

void adamw_step(float* p, const float* g, float* m, float* v, float* rounded, uint16_t* bits,
                size_t n, const AdamWArgs& a, cudaStream_t stream);

}  // namespace lathe::cuda
