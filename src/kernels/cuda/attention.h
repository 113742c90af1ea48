// Causal grouped-query attention on the GPU, flash-style; shapes and semantics as
// src/kernels/cpu/attention.h (qkv [B*T, (H+2KV)*D], out [B*T, H*D], lse [B, H, T],
// doc_start per-document masks, query head h reads KV head h / (H/KV)).
#pragma once
#include "backend/backend.h"
#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

void attention_forward(float* out, float* lse, const float* qkv, const AttentionArgs& a,
                       cudaStream_t stream);
// dqkv is written (not accumulated). `delta` is device scratch of B·H·T floats.
void attention_backward(float* dqkv, float* delta, const float* dout, const float* out,
                        const float* lse, const float* qkv, const AttentionArgs& a,
                        cudaStream_t stream);

}  // namespace lathe::cuda
