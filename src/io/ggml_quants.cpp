// The ggml reference quantizers (see ggml_quants.h). Every float operation below happens in
// the order ggml's C code does it, in single precision, and this file is compiled with
// -ffp-contract=off (CMakeLists.txt): a fused multiply-add would round once where ggml
// rounds twice, and the bytes would differ.
#include "io/ggml_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace lathe {
namespace {

constexpr int kQ32 = 32;    // QK8_0 = QK4_0 = QK5_0
constexpr int kQK_K = 256;  // super-block of the k-quants

void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

float get_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Round to the nearest integer, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves the
// integer in the low 23 mantissa bits (offset by 2^22), rounded by the float addition itself.
// ggml's nearest_int, so that ties go the same way.
int nearest_int(float v) {
  const float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// q8_0: d = max|x| / 127, q = round(x / d) half away from zero; block = fp16 d, 32 x int8.
void quantize_q8_0(const float* x, uint8_t* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ32; ++b, x += kQ32, y += 34) {
    float amax = 0.0f;
    for (int j = 0; j < kQ32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(y, d);
    for (int j = 0; j < kQ32; ++j) y[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
  }
}

// The signed value of largest magnitude (the first one on ties): q4_0 and q5_0 map it to
// the end of the range (-8 or -16), so the other end has one step to spare.
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQ32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// q4_0: d = max / -8, q = trunc(x / d + 8.5) capped at 15; block = fp16 d, 16 bytes of
// nibbles (low nibble: values 0..15, high nibble: values 16..31).
void quantize_q4_0(const float* x, uint8_t* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ32; ++b, x += kQ32, y += 18) {
    const float d = signed_absmax(x) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(y, d);
    for (int j = 0; j < kQ32 / 2; ++j) {
      const uint8_t lo = uint8_t(std::min<int>(15, int8_t(x[j] * id + 8.5f)));
      const uint8_t hi = uint8_t(std::min<int>(15, int8_t(x[j + kQ32 / 2] * id + 8.5f)));
      y[2 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

// q5_0: as q4_0 with d = max / -16 and 5 bits (cap 31); block = fp16 d, the 32 fifth bits
// (little-endian u32, bit j for value j), 16 bytes of low nibbles.
void quantize_q5_0(const float* x, uint8_t* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ32; ++b, x += kQ32, y += 22) {
    const float d = signed_absmax(x) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(y, d);
    uint32_t qh = 0;
    for (int j = 0; j < kQ32 / 2; ++j) {
      const uint8_t lo = uint8_t(std::min<int>(31, int8_t(x[j] * id + 16.5f)));
      const uint8_t hi = uint8_t(std::min<int>(31, int8_t(x[j + kQ32 / 2] * id + 16.5f)));
      y[6 + j] = uint8_t((lo & 0x0F) | ((hi & 0x0F) << 4));
      qh |= uint32_t((lo & 0x10u) >> 4) << j;
      qh |= uint32_t((hi & 0x10u) >> 4) << (j + kQ32 / 2);
    }
    const uint8_t qh_bytes[4] = {uint8_t(qh), uint8_t(qh >> 8), uint8_t(qh >> 16),
                                 uint8_t(qh >> 24)};
    std::memcpy(y + 2, qh_bytes, 4);
  }
}

// ggml's make_qkx2_quants for n values and levels 0..nmax: an affine fit scale * L + min
// with min <= 0, first from the range, then the best of nstep + 1 least-squares refits
// (weighted squared error) over slightly different grids. Returns the scale; *neg_min = -min.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
                    uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_min = -min;
    return 0.f;
  }
  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = uint8_t(std::max(0, std::min(nmax, l)));
    float diff = scale * float(L[i]) + min - x[i];
    diff = diff * diff;
    best_error += w[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = uint8_t(l);
      const float fl = float(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * float(Laux[i]) + this_min - x[i];
        diff = diff * diff;
        cur_error += w[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

// Sub-block j's 6-bit scale and min from the 12 packed bytes (ggml's get_scale_min_k4):
// sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 in the
// nibbles of bytes 8-11 plus the top 2 bits of bytes 0-7.
void scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// q4_K: per 256-value super-block, 8 sub-blocks of 32 values each get an affine fit
// (weights sqrt(mean x^2) + |x|, 20 refits); their scales and mins are quantized to 6 bits
// against fp16 super-scales d = max scale / 63 and dmin = max min / 63, then every value is
// re-rounded against its quantized sub-block scale. Block: d, dmin (fp16), 12 bytes of
// scales/mins, 128 bytes of nibbles (values 64k..64k+31 low, 64k+32..64k+63 high).
void quantize_q4_k(const float* x, uint8_t* y, int64_t n) {
  uint8_t L[kQK_K], Laux[32];
  float weights[32], mins[kQK_K / 32], scales[kQK_K / 32];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, y += 144) {
    uint8_t* packed = y + 4;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kQK_K / 32; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] =
          fit_scale_min(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < kQK_K / 32; ++j) {
      const uint8_t ls = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[j])));
      const uint8_t lm = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[j])));
      if (j < 4) {
        packed[j] = ls;
        packed[j + 4] = lm;
      } else {
        packed[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
        packed[j - 4] |= uint8_t((ls >> 4) << 6);
        packed[j] |= uint8_t((lm >> 4) << 6);
      }
    }
    put_f16(y, max_scale / 63.f);
    put_f16(y + 2, max_min / 63.f);
    for (int j = 0; j < kQK_K / 32; ++j) {
      uint8_t sc, m;
      scale_min_k4(j, packed, &sc, &m);
      const float d = get_f16(y) * float(sc);
      // A zero scale keeps the levels of the fit above, as ggml does.
      if (d == 0.0f) continue;
      const float dm = get_f16(y + 2) * float(m);
      for (int i = 0; i < 32; ++i) {
        const int l = nearest_int((x[32 * j + i] + dm) / d);
        L[32 * j + i] = uint8_t(std::max(0, std::min(15, l)));
      }
    }
    uint8_t* q = y + 16;
    for (int j = 0; j < kQK_K; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
  }
}

void dequantize_q8_0(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ32; ++b, x += 34, y += kQ32) {
    const float d = get_f16(x);
    for (int j = 0; j < kQ32; ++j) y[j] = float(int8_t(x[2 + j])) * d;
  }
}

void dequantize_q4_0(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ32; ++b, x += 18, y += kQ32) {
    const float d = get_f16(x);
    for (int j = 0; j < kQ32 / 2; ++j) {
      y[j] = float((x[2 + j] & 0x0F) - 8) * d;
      y[j + kQ32 / 2] = float((x[2 + j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q5_0(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ32; ++b, x += 22, y += kQ32) {
    const float d = get_f16(x);
    const uint32_t qh =
        uint32_t(x[2]) | uint32_t(x[3]) << 8 | uint32_t(x[4]) << 16 | uint32_t(x[5]) << 24;
    for (int j = 0; j < kQ32 / 2; ++j) {
      const int hi0 = int(((qh >> j) << 4) & 0x10);
      const int hi1 = int((qh >> (j + 12)) & 0x10);
      y[j] = float(((x[6 + j] & 0x0F) | hi0) - 16) * d;
      y[j + kQ32 / 2] = float(((x[6 + j] >> 4) | hi1) - 16) * d;
    }
  }
}

void dequantize_q4_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, x += 144) {
    const float d = get_f16(x), dmin = get_f16(x + 2);
    const uint8_t* q = x + 16;
    for (int j = 0, is = 0; j < kQK_K; j += 64, q += 32, is += 2) {
      uint8_t sc, m;
      scale_min_k4(is, x + 4, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      scale_min_k4(is + 1, x + 4, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

}  // namespace

int64_t ggml_block_size(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
      return 1;
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
      return kQ32;
    case GgmlType::Q4_K:
      return kQK_K;
  }
  fail("unknown ggml type ", uint32_t(t));
}

size_t ggml_block_bytes(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
      return 4;
    case GgmlType::F16:
    case GgmlType::BF16:
      return 2;
    case GgmlType::Q8_0:
      return 34;
    case GgmlType::Q4_0:
      return 18;
    case GgmlType::Q5_0:
      return 22;
    case GgmlType::Q4_K:
      return 144;
  }
  fail("unknown ggml type ", uint32_t(t));
}

size_t ggml_row_bytes(GgmlType t, int64_t n) {
  LATHE_ASSERT(n % ggml_block_size(t) == 0);
  return size_t(n / ggml_block_size(t)) * ggml_block_bytes(t);
}

const char* ggml_type_name(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
      return "f32";
    case GgmlType::F16:
      return "f16";
    case GgmlType::BF16:
      return "bf16";
    case GgmlType::Q8_0:
      return "q8_0";
    case GgmlType::Q4_0:
      return "q4_0";
    case GgmlType::Q5_0:
      return "q5_0";
    case GgmlType::Q4_K:
      return "q4_K";
  }
  return "?";
}

void ggml_quantize_row(GgmlType t, const float* x, uint8_t* y, int64_t n) {
  LATHE_ASSERT(n % ggml_block_size(t) == 0);
  switch (t) {
    case GgmlType::F32:
      std::memcpy(y, x, size_t(n) * 4);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) put_f16(y + 2 * i, x[i]);
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(y + 2 * i, &h, 2);
      }
      return;
    case GgmlType::Q8_0:
      return quantize_q8_0(x, y, n);
    case GgmlType::Q4_0:
      return quantize_q4_0(x, y, n);
    case GgmlType::Q5_0:
      return quantize_q5_0(x, y, n);
    case GgmlType::Q4_K:
      return quantize_q4_k(x, y, n);
  }
}

void ggml_dequantize_row(GgmlType t, const uint8_t* x, float* y, int64_t n) {
  LATHE_ASSERT(n % ggml_block_size(t) == 0);
  switch (t) {
    case GgmlType::F32:
      std::memcpy(y, x, size_t(n) * 4);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) y[i] = get_f16(x + 2 * i);
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, x + 2 * i, 2);
        y[i] = bf16_to_f32(h);
      }
      return;
    case GgmlType::Q8_0:
      return dequantize_q8_0(x, y, n);
    case GgmlType::Q4_0:
      return dequantize_q4_0(x, y, n);
    case GgmlType::Q5_0:
      return dequantize_q5_0(x, y, n);
    case GgmlType::Q4_K:
      return dequantize_q4_k(x, y, n);
  }
}

}  // namespace lathe
