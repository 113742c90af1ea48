// Products of a few rows with weights packed once for them, for generation and serving,
// where the weights do not change between steps. oneDNN's fp32 kernels take the weights
// in their stored layout and repack them on every call; a decode step of 32 rows reads
// each weight once, so that repacking is a large share of the step. Packed ahead, a
// product is only the 6 × 16 register-tile loop.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lathe::cpu {

// Panels of 16 weight rows, k-major: panel p holds W[16p + j, k] at [p][k][j], the last
// panel padded with zeros. Floats needed: packed_weights_size(N, K).
size_t packed_weights_size(int64_t N, int64_t K);
// W [N, K] row-major with row stride ldw (a linear layer's weight in HF layout), fp32.
void pack_weights(float* panels, const float* W, int64_t N, int64_t K, int64_t ldw);

// C[M, N] = A[M, K] · Wᵀ (+ C when beta = 1), W packed by pack_weights. Each C element is
// one fp32 sum in k order, whatever M and the row's place in the batch: a row's result
// does not depend on the rows computed with it.
void matmul_packed(float* C, const float* A, const float* panels, int64_t M, int64_t N, int64_t K,
                   int64_t lda, int64_t ldc, float beta);

}  // namespace lathe::cpu
