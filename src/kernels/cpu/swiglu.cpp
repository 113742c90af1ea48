#include "kernels/cpu/swiglu.h"

#include <cmath>

#include "kernels/cpu/isa_namespace.h"
#include "kernels/cpu/vec_math.h"

namespace lathe::cpu::LATHE_KERNEL_NS {

void swiglu_forward(float* h, const float* gate_up, int64_t M, int64_t I) {
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    const float* g = gate_up + m * 2 * I;
    const float* u = g + I;
    float* o = h + m * I;
    for (int64_t i = 0; i < I; ++i) o[i] = g[i] / (1.0f + exp_vec(-g[i])) * u[i];
  }
}

void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t M, int64_t I) {
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    const float* g = gate_up + m * 2 * I;
    const float* u = g + I;
    const float* d = dh + m * I;
    float* dg = dgate_up + m * 2 * I;
    float* du = dg + I;
    for (int64_t i = 0; i < I; ++i) {
      float sig = 1.0f / (1.0f + exp_vec(-g[i]));
      float silu = g[i] * sig;
      du[i] = d[i] * silu;
      dg[i] = d[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
  }
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
