#include "kernels/cpu/adamw.h"

#include <cmath>

#include "core/dtype.h"
#include "kernels/cpu/isa_namespace.h"

namespace lathe::cpu::LATHE_KERNEL_NS {

namespace {

// One loop per set of outputs: an optional store inside the loop would keep it from
// vectorizing, and the step is bound by memory traffic, so it must vectorize (restrict
// pointers, no errno from sqrt: see CMakeLists.txt).
template <bool kRounded, bool kBits>
void adamw_loop(float* __restrict p, const float* __restrict g, float* __restrict m,
                float* __restrict v, float* __restrict rounded, uint16_t* __restrict bits, size_t n,
                const AdamWArgs& a) {
  const float b1 = a.beta1, b2 = a.beta2;
  const float bc1 = 1.0f - float(std::pow(double(b1), double(a.step)));
  const float bc2_sqrt = float(std::sqrt(1.0 - std::pow(double(b2), double(a.step))));
  const float step_size = a.lr / bc1;
  const float decay = 1.0f - a.lr * a.weight_decay;
  const float grad_scale = a.grad_scale, eps = a.eps;
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const float gi = g[i] * grad_scale;
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float pi = p[i] * decay - step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps);
    p[i] = pi;
    if constexpr (kRounded || kBits) {
      const uint16_t b = f32_to_bf16(pi);
      if constexpr (kRounded) rounded[i] = bf16_to_f32(b);
      if constexpr (kBits) bits[i] = b;
    }
  }
}

}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, float* rounded, uint16_t* bits,
                size_t n, const AdamWArgs& a) {
  if (rounded && bits) return adamw_loop<true, true>(p, g, m, v, rounded, bits, n, a);
  if (rounded) return adamw_loop<true, false>(p, g, m, v, rounded, bits, n, a);
  if (bits) return adamw_loop<false, true>(p, g, m, v, rounded, bits, n, a);
  adamw_loop<false, false>(p, g, m, v, rounded, bits, n, a);
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
