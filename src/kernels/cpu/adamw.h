#pragma once
#include <cstddef>

#include "backend/backend.h"

namespace lathe::cpu {

// PyTorch AdamW (decoupled decay, bias correction), over n consecutive parameters, with
// g scaled by a.grad_scale first (clipping, without a separate pass over the gradients):
//   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²
//   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
// compute (nullable) receives the new p, rounded to bf16 when compute_bf16.
void adamw_step(float* p, const float* g, float* m, float* v, float* compute, bool compute_bf16,
                size_t n, const AdamWArgs& a);

}  // namespace lathe::cpu
