#pragma once
#include <cstdint>

namespace lathe::cpu {

// logits[M,V] → (softmax - onehot(target)) * scale in place; returns the summed loss
// -log softmax[target] over rows with target != -100 (other rows are zeroed).
// The lm_head product around it is chunked over tokens by the model, so at most
// chunk·V logits exist at once (see model/llama_layers.cpp).
double softmax_cross_entropy(float* logits, const int32_t* targets, int64_t M, int64_t V,
                             float scale);

}  // namespace lathe::cpu
