// Products of a few rows against bf16-stored weights on CPUs without bf16 dot products,
// for generation and serving. oneDNN's fp32 kernels would need the weights widened to a
// dense fp32 copy first (a pass over N·K floats per product); a decode step of 32 rows
// reads each weight once, so widening costs more than the product. This kernel reads the
// bf16 rows as they are and widens them in registers: half the memory traffic of fp32
// weights, which is what bounds a step of few rows.
#pragma once
#include <cstdint>

namespace lathe::cpu {

// C[M, N] = A[M, K] · Wᵀ (+ C when beta = 1), W [N, K] row-major bf16 bits (a linear
// layer's weight in HF layout), A and C fp32 with row strides lda and ldc.
// Each C element is one dot product in a fixed order (8-wide partial sums over k, summed
// the same way, then the k tail), whatever M and the row's place in the batch: a row's
// result does not depend on the other rows it is computed with, so a served request gets
// the logits it would get alone.
void matmul_bf16_weights(float* C, const float* A, const uint16_t* W, int64_t M, int64_t N,
                         int64_t K, int64_t lda, int64_t ldw, int64_t ldc, float beta);

}  // namespace lathe::cpu
