// ggml's reference quantizers (io/ggml_quants.h): blocks whose bytes can be worked out by
// hand, and round-trip error bounds on random rows. Byte equality with ggml itself is
// checked by tests/io/gguf_export_test.py (gguf-py's quantizers, written to match ggml)
// and tests/io/llama_cpp.sh (llama-quantize).
#include "io/ggml_quants.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"

namespace lathe {
namespace {

uint16_t u16_at(const std::vector<uint8_t>& b, size_t at) {
  uint16_t v;
  std::memcpy(&v, b.data() + at, 2);
  return v;
}

std::vector<float> ramp() {  // -16, -15, ..., 15
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = float(j - 16);
  return x;
}

std::vector<uint8_t> quantize(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> y(ggml_row_bytes(t, int64_t(x.size())));
  ggml_quantize_row(t, x.data(), y.data(), int64_t(x.size()));
  return y;
}

std::vector<float> dequantize(GgmlType t, const std::vector<uint8_t>& y, size_t n) {
  std::vector<float> x(n);
  ggml_dequantize_row(t, y.data(), x.data(), int64_t(n));
  return x;
}

TEST(GgmlQuants, BlockSizes) {
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q8_0, 64), 68u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_0, 64), 36u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q5_0, 32), 22u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_K, 512), 288u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::BF16, 3), 6u);
  EXPECT_STREQ(ggml_type_name(GgmlType::Q4_K), "q4_K");
}

TEST(GgmlQuants, Q8_0RampByHand) {
  // amax 16: d = 16/127, each value x * 127/16 rounded half away from zero.
  const std::vector<uint8_t> y = quantize(GgmlType::Q8_0, ramp());
  ASSERT_EQ(y.size(), 34u);
  EXPECT_EQ(u16_at(y, 0), f32_to_f16(16.0f / 127));
  const float id = 1.0f / (16.0f / 127);
  for (int j = 0; j < 32; ++j)
    EXPECT_EQ(int8_t(y[size_t(2 + j)]), int(std::round(float(j - 16) * id))) << j;
  EXPECT_EQ(int8_t(y[2]), -127);
  EXPECT_EQ(int8_t(y[2 + 16]), 0);
  EXPECT_EQ(int8_t(y[2 + 24]), 64);  // 8 * 7.9375 = 63.5: the tie goes away from zero
}

TEST(GgmlQuants, Q4_0RampByHand) {
  // The largest magnitude is -16: d = -16 / -8 = 2, q = trunc(x / 2 + 8.5) capped at 15.
  const std::vector<uint8_t> y = quantize(GgmlType::Q4_0, ramp());
  ASSERT_EQ(y.size(), 18u);
  EXPECT_EQ(u16_at(y, 0), 0x4000);  // 2.0 in fp16
  EXPECT_EQ(y[2], 0x80);            // x = -16 -> 0 (low), x = 0 -> 8 (high)
  EXPECT_EQ(y[2 + 15], 0xF8);       // x = -1 -> -0.5 + 8.5 = 8 (low), x = 15 -> 16, capped 15
  const std::vector<float> back = dequantize(GgmlType::Q4_0, y, 32);
  for (int j = 0; j < 32; ++j) {
    const float x = float(j - 16);
    const int q = std::min(15, int(x / 2 + 8.5f));
    EXPECT_EQ(back[size_t(j)], float(q - 8) * 2) << j;
  }
  EXPECT_EQ(back[31], 14.0f);  // 15 would need q = 16: capped, one step short
}

TEST(GgmlQuants, Q5_0RampIsExact) {
  // d = -16 / -16 = 1, so every integer in [-16, 15] is stored exactly; the fifth bit of
  // values 16..31 (x >= 0) lands in bits 16..31 of qh.
  const std::vector<uint8_t> y = quantize(GgmlType::Q5_0, ramp());
  ASSERT_EQ(y.size(), 22u);
  EXPECT_EQ(u16_at(y, 0), 0x3C00);  // 1.0
  uint32_t qh;
  std::memcpy(&qh, y.data() + 2, 4);
  EXPECT_EQ(qh, 0xFFFF0000u);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(y[size_t(6 + j)], uint8_t(j | (j << 4))) << j;
  EXPECT_EQ(dequantize(GgmlType::Q5_0, y, 32), ramp());
}

TEST(GgmlQuants, ZeroBlocksStayZero) {
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K}) {
    const std::vector<float> x(size_t(ggml_block_size(t)), 0.0f);
    const std::vector<uint8_t> y = quantize(t, x);
    EXPECT_EQ(dequantize(t, y, x.size()), x) << ggml_type_name(t);
    // d: q4_0 and q5_0 divide the signed maximum by -8 or -16, so an all-zero block stores
    // -0.0 (0x8000), as ggml does.
    const bool signed_max = t == GgmlType::Q4_0 || t == GgmlType::Q5_0;
    EXPECT_EQ(u16_at(y, 0), signed_max ? 0x8000 : 0) << ggml_type_name(t);
  }
}

TEST(GgmlQuants, Q4_KConstantBlockByHand) {
  // 256 copies of 1.5: every sub-block fits scale 0.1 (15 * 0.1 = 1.5) with min 0, so the
  // 6-bit scales are all 63 against d = fp16(0.1 / 63), the mins 0, and every level 15.
  const std::vector<float> x(256, 1.5f);
  const std::vector<uint8_t> y = quantize(GgmlType::Q4_K, x);
  ASSERT_EQ(y.size(), 144u);
  EXPECT_EQ(u16_at(y, 0), f32_to_f16(0.1f / 63.f));
  EXPECT_EQ(u16_at(y, 2), 0);  // dmin
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(y[size_t(4 + j)], 0xFF);   // scale j (63) | scale j+4's top 2 bits (3) << 6
    EXPECT_EQ(y[size_t(8 + j)], 0);      // min j | min j+4's top bits
    EXPECT_EQ(y[size_t(12 + j)], 0x0F);  // scale j+4's low nibble | min j+4's << 4
  }
  for (size_t i = 16; i < 144; ++i) EXPECT_EQ(y[i], 0xFF) << i;
  const std::vector<float> back = dequantize(GgmlType::Q4_K, y, 256);
  const float v = f16_to_f32(u16_at(y, 0)) * 63 * 15;
  for (float b : back) EXPECT_EQ(b, v);
  EXPECT_NEAR(v, 1.5f, 1.5f * 1e-3f);
}

TEST(GgmlQuants, F16AndBf16RoundToNearestEven) {
  const std::vector<float> x = {1.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, -65504.0f, 1e-7f,
                                0.0f};
  const std::vector<uint8_t> h = quantize(GgmlType::F16, x);
  EXPECT_EQ(u16_at(h, 2), 0x3C00);  // the tie 1 + 2^-11 rounds down to even 1.0
  EXPECT_EQ(u16_at(h, 4), 0x3C02);  // 1 + 3 * 2^-11 rounds up to even 1 + 2^-9
  const std::vector<uint8_t> b = quantize(GgmlType::BF16, {1.0f + 1.0f / 256, 1.0f + 3.0f / 256});
  EXPECT_EQ(u16_at(b, 0), 0x3F80);
  EXPECT_EQ(u16_at(b, 2), 0x3F82);
  EXPECT_EQ(dequantize(GgmlType::F32, quantize(GgmlType::F32, x), x.size()), x);
}

// Round trips of random rows (normal, with outliers): every value within the bound the
// format guarantees, and the error far below the values' spread on average.
TEST(GgmlQuants, RoundTripErrorBounds) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  const int64_t n = 4096;
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  for (int64_t i = 0; i < n; i += 97) x[size_t(i)] *= 20;  // outliers
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::Q4_0,
                     GgmlType::Q4_K}) {
    const std::vector<float> back = dequantize(t, quantize(t, x), x.size());
    const int64_t block = std::max<int64_t>(32, ggml_block_size(t));
    double sq = 0, sq_x = 0;
    for (int64_t b = 0; b < n; b += block) {
      float amax = 0;
      for (int64_t i = b; i < b + block; ++i) amax = std::max(amax, std::fabs(x[size_t(i)]));
      // Per type: q8_0 half a step of amax/127 plus up to 127 times fp16's error on the step
      // (2^-11 relative: 0.06 step); q5_0 and q4_0 a full step of amax/16 and amax/8 (the
      // capped end is one step off); q4_K a step of its sub-block (range <= 2 amax, 15
      // levels), the 6-bit scales and mins adding up to 10%.
      const float bound = t == GgmlType::F16    ? amax * 0x1p-11f
                          : t == GgmlType::BF16 ? amax * 0x1p-8f
                          : t == GgmlType::Q8_0 ? amax / 127 * 0.57f
                          : t == GgmlType::Q5_0 ? amax / 16 * 1.01f
                          : t == GgmlType::Q4_0 ? amax / 8 * 1.01f
                                                : amax * 2 / 15 * 1.1f;
      for (int64_t i = b; i < b + block; ++i) {
        const float err = std::fabs(back[size_t(i)] - x[size_t(i)]);
        ASSERT_LE(err, bound) << ggml_type_name(t) << " value " << i << " = " << x[size_t(i)];
        sq += double(err) * err;
        sq_x += double(x[size_t(i)]) * x[size_t(i)];
      }
    }
    const double rel_rms = std::sqrt(sq / sq_x);
    // With an outlier 20x the spread in some blocks, measured: q8_0 0.012, q5_0 0.089,
    // q4_K 0.099, q4_0 0.150.
    const double limit = t == GgmlType::Q8_0                         ? 0.02
                         : t == GgmlType::Q4_0                       ? 0.2
                         : t == GgmlType::F16 || t == GgmlType::BF16 ? 0.01
                                                                     : 0.12;
    EXPECT_LT(rel_rms, limit) << ggml_type_name(t);
    std::printf("[ reached ] %s round trip: relative RMS error %.2e\n", ggml_type_name(t), rel_rms);
  }
}

}  // namespace
}  // namespace lathe
