#include "kernels/cpu/embedding.h"

#include <cstring>

#include "kernels/cpu/isa_namespace.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace lathe::cpu::LATHE_KERNEL_NS {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t M, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) std::memcpy(out + m * C, table + int64_t(ids[m]) * C, C * 4);
}

void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t M,
                        int64_t C) {
  // The same token may occur in many rows; splitting the columns keeps every write
  // private to one thread without atomics, and keeps the order of the sums fixed.
#pragma omp parallel
  {
    int nt = 1, t = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    t = omp_get_thread_num();
#endif
    int64_t c0 = C * t / nt, c1 = C * (t + 1) / nt;
    for (int64_t m = 0; m < M; ++m) {
      float* dst = dtable + int64_t(ids[m]) * C;
      const float* src = dout + m * C;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
