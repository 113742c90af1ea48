#pragma once
#include <cstddef>
#include <cstdint>

#include "backend/backend.h"

namespace lathe::cpu {

// PyTorch AdamW (decoupled decay, bias correction), over n consecutive parameters, with
// g scaled by a.grad_scale first (clipping, without a separate pass over the gradients):
//   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²
//   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
// The new p rounded to bf16 also goes to `rounded` (fp32 storage) and to `bits` (bf16
// bits) where they are not null: the copies products read in bf16 training.
void adamw_step(float* p, const float* g, float* m, float* v, float* rounded, uint16_t* bits,
                size_t n, const AdamWArgs& a);

}  // namespace lathe::cpu
