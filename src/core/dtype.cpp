#include "core/dtype.h"

#include "core/cpu_isa.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>

namespace lathe {

bool dtype_from_name(std::string_view name, DType* out) {
  if (name == "F32") {
    *out = DType::F32;
  } else if (name == "BF16") {
    *out = DType::BF16;
  } else if (name == "F16") {
    *out = DType::F16;
  } else {
    return false;
  }
  return true;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      // Subnormal half: every one is a normal float, so shift the leading 1 into the
      // implicit position and lower the exponent to match.
      uint32_t e = 113;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --e;
      }
      bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);  // keeps the NaN payload
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) {
    // Quiet NaN that keeps the top payload bits, as the F16C instructions do.
    return uint16_t(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  }
  if (abs == 0x7f800000u) return uint16_t(sign | 0x7c00u);
  int e = int(abs >> 23) - 127;
  if (e > 15) return uint16_t(sign | 0x7c00u);
  if (e >= -14) {
    uint32_t mant = abs & 0x7fffffu;
    uint32_t h = (uint32_t(e + 15) << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    // A carry out of the mantissa bumps the exponent, up to infinity: the right result.
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return uint16_t(sign | h);
  }
  if (e < -25) return sign;  // below half the smallest subnormal: rounds to zero
  uint32_t m = (abs & 0x7fffffu) | 0x800000u;
  int shift = -e - 1;  // 14..24: units of 2^-24, the half subnormal step
  uint32_t h = m >> shift;
  uint32_t rem = m & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1u))) ++h;
  return uint16_t(sign | h);
}

namespace {

void f32_to_bf16_scalar(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

void bf16_to_f32_scalar(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

// GCC 12 at -O1 flags the deliberately undefined pass-through operand inside its own
// AVX-512 intrinsic headers as maybe-uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Integer emulation of f32_to_bf16 rather than VCVTNEPS2BF16: that instruction treats
// subnormal inputs as zero and needs AVX512_BF16, and results must match the scalar path.
__attribute__((target("avx512f,avx512bw"))) void f32_to_bf16_avx512(const float* src, uint16_t* dst,
                                                                    size_t n) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i bias = _mm512_set1_epi32(0x7fff);
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i inf = _mm512_set1_epi32(0x7f800000);
  const __m512i quiet = _mm512_set1_epi32(0x40);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i u = _mm512_loadu_si512(src + i);
    __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(hi, one))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
    __m512i r = _mm512_mask_or_epi32(rounded, nan, hi, quiet);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(r));
  }
  f32_to_bf16_scalar(src + i, dst + i, n - i);
}

__attribute__((target("avx512f,avx512bw"))) void bf16_to_f32_avx512(const uint16_t* src, float* dst,
                                                                    size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    __m512i u = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    _mm512_storeu_si512(dst + i, u);
  }
  bf16_to_f32_scalar(src + i, dst + i, n - i);
}

#pragma GCC diagnostic pop

bool have_avx512() { return cpu_isa() == CpuIsa::Avx512; }

}  // namespace

void convert_f32_to_bf16(const float* src, uint16_t* dst, size_t n) {
  if (have_avx512()) {
    f32_to_bf16_avx512(src, dst, n);
  } else {
    f32_to_bf16_scalar(src, dst, n);
  }
}

void convert_bf16_to_f32(const uint16_t* src, float* dst, size_t n) {
  if (have_avx512()) {
    bf16_to_f32_avx512(src, dst, n);
  } else {
    bf16_to_f32_scalar(src, dst, n);
  }
}

void convert_to_f32(const void* src, DType src_type, float* dst, size_t n) {
  // A safetensors file need not place a 16-bit tensor at an even offset (the format pads
  // only its header), and reading uint16_t through an odd address is undefined behaviour.
  // Such a tensor goes through an aligned bounce buffer, 8 KiB at a time.
  if (src_type != DType::F32 && reinterpret_cast<uintptr_t>(src) % alignof(uint16_t) != 0) {
    uint16_t chunk[4096];
    const auto* bytes = static_cast<const unsigned char*>(src);
    for (size_t i = 0; i < n; i += std::size(chunk)) {
      const size_t m = std::min(n - i, std::size(chunk));
      std::memcpy(chunk, bytes + i * sizeof(uint16_t), m * sizeof(uint16_t));
      convert_to_f32(chunk, src_type, dst + i, m);
    }
    return;
  }
  switch (src_type) {
    case DType::F32:
      if (n) std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::BF16:
      convert_bf16_to_f32(static_cast<const uint16_t*>(src), dst, n);
      return;
    case DType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(h[i]);
      return;
    }
  }
}

void convert_from_f32(const float* src, void* dst, DType dst_type, size_t n) {
  switch (dst_type) {
    case DType::F32:
      if (n) std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::BF16:
      convert_f32_to_bf16(src, static_cast<uint16_t*>(dst), n);
      return;
    case DType::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) h[i] = f32_to_f16(src[i]);
      return;
    }
  }
}

}  // namespace lathe
