#include "model/nf4.h"

#include <algorithm>
#include <cmath>

namespace lathe {

Nf4Tensor quantize_nf4(const float* w, size_t n) {
  Nf4Tensor t;
  const size_t nb = (n + size_t(kNf4Block) - 1) / size_t(kNf4Block);
  t.codes.assign((n + 1) / 2, 0);
  t.absmax.resize(nb);
  float mid[15];
  for (int i = 0; i < 15; ++i) mid[i] = 0.5f * (kNf4Values[i] + kNf4Values[i + 1]);
  for (size_t b = 0; b < nb; ++b) {
    const size_t end = std::min(n, (b + 1) * size_t(kNf4Block));
    float amax = 0;
    for (size_t i = b * size_t(kNf4Block); i < end; ++i) amax = std::max(amax, std::fabs(w[i]));
    t.absmax[b] = amax;
    const float inv = amax > 0 ? 1.0f / amax : 0.0f;
    for (size_t i = b * size_t(kNf4Block); i < end; ++i) {
      const float x = w[i] * inv;
      const uint8_t code = uint8_t(std::upper_bound(mid, mid + 15, x) - mid);
      t.codes[i / 2] |= uint8_t((i & 1) ? code << 4 : code);
    }
  }
  return t;
}

Log8Scales quantize_log8(const std::vector<float>& scales) {
  Log8Scales out;
  const size_t n = scales.size();
  const size_t groups = (n + size_t(kScaleGroup) - 1) / size_t(kScaleGroup);
  out.q.resize(n);
  out.lo_step.resize(2 * groups);
  for (size_t g = 0; g < groups; ++g) {
    const size_t b = g * size_t(kScaleGroup), e = std::min(n, b + size_t(kScaleGroup));
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = b; i < e; ++i)
      if (scales[i] > 0) lo = std::min(lo, std::log(scales[i])), hi = std::max(hi, std::log(scales[i]));
    if (!std::isfinite(lo)) lo = hi = 0;  // an all-zero group
    const float step = hi > lo ? (hi - lo) / 255.0f : 0.0f;
    out.lo_step[2 * g] = lo;
    out.lo_step[2 * g + 1] = step;
    for (size_t i = b; i < e; ++i) {
      const float l = scales[i] > 0 ? std::log(scales[i]) : lo;
      out.q[i] = step > 0 ? uint8_t(std::lround((l - lo) / step)) : 0;
    }
  }
  return out;
}

}  // namespace lathe
