// Per-element math shared by the CPU tests and the CUDA kernels (see hd.h): bf16
// rounding, the polynomial exp the CPU kernels use, SwiGLU, RoPE's rotation and AdamW's
// update. Each matches its CPU kernel in src/kernels/cpu bit for bit on the host
// (tests/kernels/shared_math_test.cpp checks that).
#pragma once
#include <cmath>
#include <cstdint>

#include "backend/backend.h"
#include "kernels/common/hd.h"

namespace lathe::hd {

// bf16 <-> fp32, round to nearest even, NaN stays a quiet NaN (core/dtype.h's rule).
LATHE_HD float bf16_to_f32(uint16_t b) { return bits_float(uint32_t(b) << 16); }
LATHE_HD uint16_t f32_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  return uint16_t(nan ? (u | 0x00400000u) >> 16 : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
LATHE_HD float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// exp(x) with ~2 ulp error over [-87, 88]: the Cephes polynomial of cpu/vec_math.h, so the
// GPU's softmax and SwiGLU see the same exponentials as the CPU's.
LATHE_HD float exp_poly(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float k = shifted - 12582912.0f;
  const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t ki = int32_t(float_bits(shifted)) - int32_t(float_bits(12582912.0f));
  return p * bits_float(uint32_t((ki + 127) << 23));
}

// SwiGLU: h = silu(g) · u.
LATHE_HD float swiglu(float g, float u) { return g / (1.0f + exp_poly(-g)) * u; }
// Its backward: dg and du from dh.
LATHE_HD void swiglu_grad(float g, float u, float dh, float* dg, float* du) {
  const float sig = 1.0f / (1.0f + exp_poly(-g));
  const float silu = g * sig;
  *du = dh * silu;
  *dg = dh * u * sig * (1.0f + g * (1.0f - sig));
}

// RoPE (rotate-half): the pair (x1, x2) = (v[i], v[i + D/2]) rotated by the angle whose
// cos and sin are c and s; inverse rotates back (the backward).
LATHE_HD void rope_rotate(float* x1, float* x2, float c, float s, bool inverse) {
  const float sn = inverse ? -s : s;
  const float a = *x1, b = *x2;
  *x1 = a * c - b * sn;
  *x2 = b * c + a * sn;
}

// AdamW's per-step constants, computed once on the host exactly as cpu/adamw.cpp does.
struct AdamWConsts {
  float b1, b2, step_size, bc2_sqrt, decay, grad_scale, eps;
};

// Host only: the bias corrections in double, then fp32, exactly as cpu/adamw.cpp.
inline AdamWConsts adamw_consts(const AdamWArgs& a) {
  AdamWConsts k;
  k.b1 = a.beta1;
  k.b2 = a.beta2;
  const float bc1 = 1.0f - float(std::pow(double(a.beta1), double(a.step)));
  k.bc2_sqrt = float(std::sqrt(1.0 - std::pow(double(a.beta2), double(a.step))));
  k.step_size = a.lr / bc1;
  k.decay = 1.0f - a.lr * a.weight_decay;
  k.grad_scale = a.grad_scale;
  k.eps = a.eps;
  return k;
}

// One parameter's update; returns the new p (m and v updated in place).
LATHE_HD float adamw_update(float p, float g, float* m, float* v, const AdamWConsts& k) {
  const float gi = g * k.grad_scale;
  const float mi = k.b1 * *m + (1.0f - k.b1) * gi;
  const float vi = k.b2 * *v + (1.0f - k.b2) * gi * gi;
  *m = mi;
  *v = vi;
  return p * k.decay - k.step_size * mi / (sqrt_f(vi) / k.bc2_sqrt + k.eps);
}

}  // namespace lathe::hd
