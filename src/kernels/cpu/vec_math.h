// Math that the compiler can vectorize: libm's expf is a scalar call per element, which
// made it 15% of a training step's time in attention and the softmax.
#pragma once
#include <bit>
#include <cstdint>

namespace lathe::cpu {

// exp(x) with ~2 ulp error over [-87, 88] (Cephes polynomial, Cody-Waite reduction);
// inputs below -87.3 give ~1e-38 rather than 0, which no softmax sum can notice.
inline float exp_vec(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  // Round x·log2(e) to the nearest integer k with the 1.5·2^23 trick: pure arithmetic,
  // so loops of this function vectorize.
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
  const int32_t ki = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(12582912.0f);
  return p * std::bit_cast<float>((ki + 127) << 23);
}

}  // namespace lathe::cpu
