// KV-cache attention for generation on the GPU; semantics as
// src/kernels/cpu/attention_decode.h (the new rows' k and v are written into the cache
// first, then each row's queries attend to positions [0, pos] of its slot).
#pragma once
#include "backend/backend.h"
#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

void attention_decode(float* out, const float* qkv, float* k_cache, float* v_cache,
                      const AttentionDecodeArgs& a, cudaStream_t stream);

}  // namespace lathe::cuda
