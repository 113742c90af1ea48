// Row gather and scatter on the GPU; semantics as src/kernels/cpu/rows.h.
#pragma once
#include <cstdint>

#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

// dst[i, :] = src[rows[i], :] for i < n.
void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C,
                 cudaStream_t stream);
// dst[rows[i], :] = src[i, :] for i < n, rows distinct.
void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C,
                  cudaStream_t stream);

}  // namespace lathe::cuda
