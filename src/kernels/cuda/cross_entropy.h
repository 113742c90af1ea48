// Fused softmax cross-entropy on the GPU; semantics as src/kernels/cpu/cross_entropy.h:
// logits [M,V] become (softmax − onehot(target)) · scale in place, rows with a negative
// target become zero. Each row's loss goes to row_loss[m] (device, fp64; 0 for skipped
// rows): the caller adds them in row order, as the CPU does.
#pragma once
#include <cstdint>

#include "kernels/cuda/cuda_runtime_or_emulation.h"

namespace lathe::cuda {

void softmax_cross_entropy(double* row_loss, float* logits, const int32_t* targets, int64_t M,
                           int64_t V, float scale, cudaStream_t stream);

}  // namespace lathe::cuda
