#pragma once
#include <cstdint>

namespace lathe::cpu {

// out[M,C] = table[ids[m], :]
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t M, int64_t C);
// dtable[ids[m], :] += dout[m, :]  (rows repeat, so threads split the columns)
void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t M, int64_t C);

}  // namespace lathe::cpu
