#pragma once
#include <cstdint>

namespace lathe::cpu {

// gate_up[M, 2I] holds gate_proj output in columns [0,I) and up_proj in [I,2I).
// h[M,I] = silu(gate) * up.
void swiglu_forward(float* h, const float* gate_up, int64_t M, int64_t I);
// dgate_up[M,2I] = (dh * up * silu'(gate), dh * silu(gate)).
void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t M, int64_t I);

}  // namespace lathe::cpu
