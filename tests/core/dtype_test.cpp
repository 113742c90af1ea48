#include "core/dtype.h"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace lathe {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

bool is_f16_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

// Inputs that exercise every branch of the rounding: ties, NaNs of both kinds, infinities,
// the largest finite values, subnormals and signed zeros, then random bit patterns.
std::vector<float> tricky_floats(size_t n_random, uint32_t seed) {
  std::vector<uint32_t> bits = {0x00000000, 0x80000000, 0x3f800000, 0x3f808000, 0x3f818000,
                                0x3f808001, 0x3f807fff, 0x7f800000, 0xff800000, 0x7fc00000,
                                0x7f800001, 0xff800001, 0x7fa00000, 0xffffffff, 0x7f7fffff,
                                0xff7fffff, 0x7f7f8000, 0x7f7f7fff, 0x00000001, 0x00008000,
                                0x00018000, 0x807fffff, 0x477fe000, 0x477ff000, 0x33000000};
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n_random; ++i) bits.push_back(rng());
  std::vector<float> out;
  for (uint32_t b : bits) out.push_back(from_bits(b));
  return out;
}

TEST(DType, NamesAndSizes) {
  DType t;
  ASSERT_TRUE(dtype_from_name("F32", &t));
  EXPECT_EQ(t, DType::F32);
  ASSERT_TRUE(dtype_from_name("BF16", &t));
  EXPECT_EQ(t, DType::BF16);
  ASSERT_TRUE(dtype_from_name("F16", &t));
  EXPECT_EQ(t, DType::F16);
  EXPECT_FALSE(dtype_from_name("I64", &t));
  EXPECT_FALSE(dtype_from_name("f32", &t));
  EXPECT_FALSE(dtype_from_name("", &t));
  for (DType d : {DType::F32, DType::BF16, DType::F16}) {
    DType back;
    ASSERT_TRUE(dtype_from_name(dtype_name(d), &back));
    EXPECT_EQ(back, d);
  }
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000)), 0x3f80);  // tie, even below
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000)), 0x3f82);  // tie, odd below: up
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f807fff)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-1.0f), 0xbf80);
  EXPECT_EQ(f32_to_bf16(from_bits(0xbf818000)), 0xbf82);
  EXPECT_EQ(f32_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  // Subnormals round like everything else instead of flushing to zero.
  EXPECT_EQ(f32_to_bf16(from_bits(0x00000001)), 0x0000);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000)), 0x0002);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00010001)), 0x0001);
}

TEST(DType, Bf16SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_bf16(inf), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-inf), 0xff80);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()), 0x7fc0);
  // A NaN whose payload lives only in the low bits must stay NaN, not turn into inf.
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f800001)), 0x7fc0);
  EXPECT_EQ(f32_to_bf16(from_bits(0xff800001)), 0xffc0);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7fa00000)), 0x7fe0);
  EXPECT_EQ(f32_to_bf16(from_bits(0xffffffff)), 0xffff);
  // Values above the largest bf16 round to infinity, as PyTorch does.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f7fff)), 0x7f7f);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f8000)), 0x7f80);
  EXPECT_EQ(f32_to_bf16(3.0e38f), 0x7f62);
}

TEST(DType, Bf16ToF32IsExact) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = bf16_to_f32(uint16_t(h));
    EXPECT_EQ(to_bits(f), h << 16);
    if (!std::isnan(f)) {
      EXPECT_EQ(f32_to_bf16(f), h);
    }
  }
}

TEST(DType, BulkF32ToBf16MatchesScalar) {
  std::vector<float> src = tricky_floats(5000, 1);
  for (size_t n : {0, 1, 7, 15, 16, 17, 31, 33, 100, 1000, 5025}) {
    ASSERT_LE(n, src.size());
    std::vector<uint16_t> dst(n + 1, 0xabcd);
    convert_f32_to_bf16(src.data(), dst.data(), n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(dst[i], f32_to_bf16(src[i]))
          << "n=" << n << " i=" << i << " bits=" << std::hex << to_bits(src[i]);
    }
    EXPECT_EQ(dst[n], 0xabcd) << "wrote past the end, n=" << n;
  }
}

TEST(DType, BulkBf16ToF32MatchesScalar) {
  std::vector<uint16_t> src(0x10000 + 13);
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint16_t(i * 40503u);
  for (size_t n : {0, 3, 16, 29, 64, 1001, 0x10000 + 13}) {
    std::vector<float> dst(n + 1, 7.0f);
    convert_bf16_to_f32(src.data(), dst.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(to_bits(dst[i]), uint32_t(src[i]) << 16) << i;
    EXPECT_EQ(dst[n], 7.0f);
  }
}

TEST(DType, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // tie between max and "65536": even is inf
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(is_f16_nan(f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(is_f16_nan(f32_to_f16(from_bits(0x7f800001))));
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie: even is zero
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);     // tie 1.5 units: up to even
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.0f, -24)), 0x03ff);  // largest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.5f, -24)), 0x0400);  // rounds into the normals
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
}

TEST(DType, F16RoundTripsEveryValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t back = f32_to_f16(f16_to_f32(uint16_t(h)));
    if (is_f16_nan(uint16_t(h))) {
      EXPECT_TRUE(is_f16_nan(back)) << std::hex << h;
      EXPECT_EQ(back & 0x8000, h & 0x8000) << std::hex << h;
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

// The vector forms: clang's scalar _cvtss_sh expands to a compound literal, which
// -Wpedantic rejects in C++.
__attribute__((target("f16c"))) uint16_t hw_f32_to_f16(float f) {
  return uint16_t(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}
__attribute__((target("f16c"))) float hw_f16_to_f32(uint16_t h) {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

TEST(DType, F16MatchesHardware) {
  // AVX2 stands for F16C, which every AVX2 CPU (x86-64-v3) has: clang 14's
  // __builtin_cpu_supports does not know "f16c".
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "CPU lacks AVX2 (and so F16C)";
  for (float f : tricky_floats(200000, 2)) {
    ASSERT_EQ(f32_to_f16(f), hw_f32_to_f16(f)) << std::hex << to_bits(f);
  }
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (is_f16_nan(uint16_t(h))) continue;  // hardware quiets signaling NaNs
    ASSERT_EQ(to_bits(f16_to_f32(uint16_t(h))), to_bits(hw_f16_to_f32(uint16_t(h))))
        << std::hex << h;
  }
}

TEST(DType, ConvertToAndFromF32) {
  std::vector<float> src = {0.0f, 1.0f, -2.5f, 3.140625f, 65504.0f, 1e-3f, -7.0f};
  for (DType t : {DType::F32, DType::BF16, DType::F16}) {
    std::vector<uint8_t> stored(src.size() * dtype_size(t));
    convert_from_f32(src.data(), stored.data(), t, src.size());
    std::vector<float> back(src.size());
    convert_to_f32(stored.data(), t, back.data(), src.size());
    for (size_t i = 0; i < src.size(); ++i) {
      float expect = t == DType::F32    ? src[i]
                     : t == DType::BF16 ? bf16_to_f32(f32_to_bf16(src[i]))
                                        : f16_to_f32(f32_to_f16(src[i]));
      EXPECT_EQ(back[i], expect) << dtype_name(t) << " i=" << i;
    }
  }
  convert_to_f32(nullptr, DType::F32, nullptr, 0);  // empty tensors are legal
}

// A 16-bit tensor at an odd offset of a safetensors file (legal: the format pads only its
// header): the values come through unchanged, across the 4096-element bounce chunks.
TEST(DType, ConvertToF32FromAnOddAddress) {
  const size_t n = 9000;
  std::vector<float> src(n);
  for (size_t i = 0; i < n; ++i) src[i] = float(i) * 0.25f - 100.0f;
  for (DType t : {DType::BF16, DType::F16}) {
    std::vector<uint8_t> aligned(n * 2), shifted(n * 2 + 1);
    convert_from_f32(src.data(), aligned.data(), t, n);
    std::memcpy(shifted.data() + 1, aligned.data(), n * 2);
    std::vector<float> want(n), got(n);
    convert_to_f32(aligned.data(), t, want.data(), n);
    convert_to_f32(shifted.data() + 1, t, got.data(), n);
    EXPECT_EQ(got, want) << dtype_name(t);
  }
}

}  // namespace
}  // namespace lathe
