#include "kernels/cpu/rope.h"

#include "kernels/cpu/isa_namespace.h"

namespace lathe::cpu::LATHE_KERNEL_NS {

void rope_apply(float* x, const int32_t* pos, const float* cos_sin, int64_t M, int64_t heads,
                int64_t D, int64_t row_stride, bool inverse) {
  const int64_t half = D / 2;
  const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    const float* cs = cos_sin + int64_t(pos[m]) * D;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + m * row_stride + h * D;
      for (int64_t i = 0; i < half; ++i) {
        float c = cs[i], s = sign * cs[half + i];
        float x1 = v[i], x2 = v[half + i];
        v[i] = x1 * c - x2 * s;
        v[half + i] = x2 * c + x1 * s;
      }
    }
  }
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
