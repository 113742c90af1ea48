#include "kernels/cpu/rows.h"

#include <cstring>

#include "kernels/cpu/isa_namespace.h"

namespace lathe::cpu::LATHE_KERNEL_NS {

// Plain row copies: bit-exact moves, so a caller that gathers, computes and scatters gets
// the same bytes as one that copied row by row. Rows are 2-16 KiB (hidden 512-4096), so
// threads split the rows.
void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst + i * C, src + int64_t(rows[i]) * C, size_t(C) * sizeof(float));
}

void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst + int64_t(rows[i]) * C, src + i * C, size_t(C) * sizeof(float));
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
