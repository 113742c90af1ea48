#pragma once
#include <cstdint>

namespace lathe::cpu {

// dst[i, :] = src[rows[i], :] for i < n; rows of C floats.
void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C);
// dst[rows[i], :] = src[i, :] for i < n. The rows must be distinct (each destination row
// is written by one source row), so the result does not depend on the order.
void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C);

}  // namespace lathe::cpu
