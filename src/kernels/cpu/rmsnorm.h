#pragma once
#include <cstdint>

namespace lathe::cpu {

// out[M,C] = x * rstd * w, rstd[M] = 1 / sqrt(mean(x^2) + eps); sums in fp32 like HF's
// LlamaRMSNorm, which upcasts to fp32.
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t M, int64_t C,
                     float eps);
// dx[M,C] += d/dx (residual stream: accumulated), dw[C] += sum over rows of dout * xhat.
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t M, int64_t C);

}  // namespace lathe::cpu
