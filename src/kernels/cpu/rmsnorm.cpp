#include "kernels/cpu/rmsnorm.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/isa_namespace.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace lathe::cpu::LATHE_KERNEL_NS {

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t M, int64_t C,
                     float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * C;
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
    float r = 1.0f / std::sqrt(ss / float(C) + eps);
    rstd[m] = r;
    float* o = out + m * C;
    for (int64_t c = 0; c < C; ++c) o[c] = xr[c] * r * w[c];
  }
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t M, int64_t C) {
  int nt = 1;
#ifdef _OPENMP
  nt = omp_get_max_threads();
#endif
  // Per-thread partial sums of dw, added in thread order afterwards: no atomics and a
  // result that does not depend on scheduling.
  std::vector<float> partial(size_t(nt) * C, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    int t = 0;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    float* pw = partial.data() + size_t(t) * C;
#pragma omp for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      const float* xr = x + m * C;
      const float* g = dout + m * C;
      float r = rstd[m];
      float dot = 0;  // sum of (dout * w) * xhat
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; ++c) {
        float xhat = xr[c] * r;
        pw[c] += g[c] * xhat;
        dot += g[c] * w[c] * xhat;
      }
      dot /= float(C);
      float* d = dx + m * C;
      for (int64_t c = 0; c < C; ++c) d[c] += r * (g[c] * w[c] - xr[c] * r * dot);
    }
  }
  for (int t = 0; t < nt; ++t)
    for (int64_t c = 0; c < C; ++c) dw[c] += partial[size_t(t) * C + c];
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
