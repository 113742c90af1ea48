#pragma once
#include <cstdint>

#include "backend/backend.h"

namespace lathe::cpu {

// Causal grouped-query attention, memory-efficient like FlashAttention: one query row of
// scores at a time (at most T floats per thread) and its log-sum-exp kept for the
// backward, so memory is O(T·D) per head and never T×T.
//   qkv [B*T, (H+2KV)*D]: per token, H query heads, then KV key heads, then KV value heads
//   out [B*T, H*D]        softmax(q·kᵀ/√D, causal, within the document) · v
//   lse [B, H, T]         log-sum-exp of each score row, kept for the backward
// Query head h reads key/value head h / (H/KV).
void attention_forward(float* out, float* lse, const float* qkv, const AttentionArgs& a);

// dqkv [B*T, (H+2KV)*D] is written (not accumulated): dq, dk, dv in the qkv layout.
// FlashAttention-2 style: probabilities are recomputed from lse; work is split by (row, KV head)
// so every thread owns the dk/dv/dq it writes.
void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, const AttentionArgs& a);

}  // namespace lathe::cpu
