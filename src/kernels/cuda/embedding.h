// Token embedding on the GPU; shapes and semantics as src/kernels/cpu/embedding.h.
#pragma once
#include <cstdint>

#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

// out[M,C] = table[ids[m], :]
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t M, int64_t C,
                       cudaStream_t stream);
// dtable[ids[m], :] += dout[m, :] (fp32 atomics: rows sharing a token add in any order).
void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t M, int64_t C,
                        cudaStream_t stream);

}  // namespace lathe::cuda
