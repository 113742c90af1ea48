// Decode-step products of a bf16 model on CPUs with AVX-512 BF16 dot products. VDPBF16PS
// multiplies 32 bf16 pairs into 16 fp32 sums per instruction, twice the products of an
// fp32 FMA of the same width, and bf16 panels are half the bytes of fp32 ones. A bf16
// model's product inputs are bf16-valued already (it rounds every one), so the kernel's
// conversion of the rows loses nothing and the products are exact in fp32, as on the fp32
// path; only the order of the fp32 sums differs.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lathe::cpu {

// Whether matmul_packed_bf16 runs on bf16 dot-product instructions here: the kernels run
// on their AVX-512 variant (core/cpu_isa.h) and the CPU has AVX512_BF16. Elsewhere the
// functions below are correct but plain loops, and callers pack fp32 panels instead.
bool packed_bf16_products();

// Panels of 32 weight rows with k in pairs: panel p holds W[32p + j, 2q + i] at
// [p][q][j][i] (a pair of one row is the 32-bit lane VDPBF16PS reads), rows past N and a
// k past an odd K zero. uint16 values needed: packed_weights_bf16_size(N, K).
size_t packed_weights_bf16_size(int64_t N, int64_t K);
// W [N, K] with row stride ldw, given as fp32 (W32) or as bf16 bits (W16, the other null);
// fp32 values are rounded to bf16 (exact for a bf16 model's weights).
void pack_weights_bf16(uint16_t* panels, const float* W32, const uint16_t* W16, int64_t N,
                       int64_t K, int64_t ldw);

// C[M, N] = A[M, K] · Wᵀ (+ C when beta = 1), A rounded to bf16. Each C element is one
// fp32 sum over the pairs in k order, the pair's odd product added before its even one (as
// VDPBF16PS does), whatever M and the row's place in the batch: a served request gets the
// logits it would get alone.
void matmul_packed_bf16(float* C, const float* A, const uint16_t* panels, int64_t M, int64_t N,
                        int64_t K, int64_t lda, int64_t ldc, float beta);

}  // namespace lathe::cpu
