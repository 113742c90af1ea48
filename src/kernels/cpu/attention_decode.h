#pragma once
#include <cstdint>

#include "backend/backend.h"

namespace lathe::cpu {

// Attention of new query rows against a KV cache (generation: a prompt's prefill, then
// one row per sequence per step). See AttentionDecodeArgs in backend/backend.h.
//   qkv     [M, (H+2KV)*D]  per row: H query heads, KV key heads, KV value heads (RoPE done)
//   k_cache [slots, KV, capacity, D], v_cache likewise: row m's k and v are stored at
//           (slot[m], pos[m]) first, then its query reads positions [0, pos[m]]
//   out     [M, H*D]        softmax(q·kᵀ/√D) · v
// Query head h reads key/value head h / (H/KV).
void attention_decode(float* out, const float* qkv, float* k_cache, float* v_cache,
                      const AttentionDecodeArgs& a);

}  // namespace lathe::cpu
