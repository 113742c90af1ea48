// Every public CPU kernel, once: return type, name, parameters, arguments. Each kernel
// file is compiled three times (CMakeLists.txt: -march=x86-64, x86-64-v3, x86-64-v4) into
// namespaces lathe::cpu::isa_baseline / isa_avx2 / isa_avx512, and dispatch.cpp defines
// the lathe::cpu functions the headers declare, calling the variant for cpu_isa().
// Whole translation units per ISA, not GCC's target_clones: the clones' ifunc resolvers
// read the CPU before main() runs, so no setting could send an AVX-512 machine down the
// AVX2 path for tests.
#pragma once
#include <cstddef>
#include <cstdint>

#include "backend/backend.h"

#define LATHE_CPU_KERNELS(X)                                                                       \
  X(void, adamw_step,                                                                              \
    (float* p, const float* g, float* m, float* v, float* rounded, uint16_t* bits, size_t n,       \
     const AdamWArgs& a),                                                                          \
    (p, g, m, v, rounded, bits, n, a))                                                             \
  X(void, attention_forward, (float* out, float* lse, const float* qkv, const AttentionArgs& a),   \
    (out, lse, qkv, a))                                                                            \
  X(void, attention_backward,                                                                      \
    (float* dqkv, const float* dout, const float* out, const float* lse, const float* qkv,         \
     const AttentionArgs& a),                                                                      \
    (dqkv, dout, out, lse, qkv, a))                                                                \
  X(void, attention_decode,                                                                        \
    (float* out, const float* qkv, float* k_cache, float* v_cache, const AttentionDecodeArgs& a),  \
    (out, qkv, k_cache, v_cache, a))                                                               \
  X(double, softmax_cross_entropy,                                                                 \
    (float* logits, const int32_t* targets, int64_t M, int64_t V, float scale),                    \
    (logits, targets, M, V, scale))                                                                \
  X(void, round_to_bf16, (float* x, size_t n), (x, n))                                             \
  X(void, pack_bf16, (uint16_t * out, const float* in, int64_t rows, int64_t cols, int64_t ld),    \
    (out, in, rows, cols, ld))                                                                     \
  X(void, add, (float* y, const float* x, size_t n), (y, x, n))                                    \
  X(double, sum_squares, (const float* x, size_t n), (x, n))                                       \
  X(void, embedding_forward,                                                                       \
    (float* out, const int32_t* ids, const float* table, int64_t M, int64_t C),                    \
    (out, ids, table, M, C))                                                                       \
  X(void, embedding_backward,                                                                      \
    (float* dtable, const int32_t* ids, const float* dout, int64_t M, int64_t C),                  \
    (dtable, ids, dout, M, C))                                                                     \
  X(void, gather_rows, (float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C),  \
    (dst, src, rows, n, C))                                                                        \
  X(void, scatter_rows, (float* dst, const float* src, const int32_t* rows, int64_t n, int64_t C), \
    (dst, src, rows, n, C))                                                                        \
  X(void, dequantize_bf16, (float* out, const uint16_t* in, size_t n), (out, in, n))               \
  X(size_t, packed_weights_size, (int64_t N, int64_t K), (N, K))                                   \
  X(void, pack_weights, (float* panels, const float* W, int64_t N, int64_t K, int64_t ldw),        \
    (panels, W, N, K, ldw))                                                                        \
  X(void, matmul_packed,                                                                           \
    (float* C, const float* A, const float* panels, int64_t M, int64_t N, int64_t K, int64_t lda,  \
     int64_t ldc, float beta),                                                                     \
    (C, A, panels, M, N, K, lda, ldc, beta))                                                       \
  X(bool, packed_bf16_products, (), ())                                                            \
  X(size_t, packed_weights_bf16_size, (int64_t N, int64_t K), (N, K))                              \
  X(void, pack_weights_bf16,                                                                       \
    (uint16_t * panels, const float* W32, const uint16_t* W16, int64_t N, int64_t K, int64_t ldw), \
    (panels, W32, W16, N, K, ldw))                                                                 \
  X(void, matmul_packed_bf16,                                                                      \
    (float* C, const float* A, const uint16_t* panels, int64_t M, int64_t N, int64_t K,            \
     int64_t lda, int64_t ldc, float beta),                                                        \
    (C, A, panels, M, N, K, lda, ldc, beta))                                                       \
  X(void, matmul_bf16_weights,                                                                     \
    (float* C, const float* A, const uint16_t* W, int64_t M, int64_t N, int64_t K, int64_t lda,    \
     int64_t ldw, int64_t ldc, float beta),                                                        \
    (C, A, W, M, N, K, lda, ldw, ldc, beta))                                                       \
  X(void, dequantize_nf4,                                                                          \
    (float* out, const uint8_t* codes, const float* absmax, size_t n, int64_t block),              \
    (out, codes, absmax, n, block))                                                                \
  X(void, dequantize_log8,                                                                         \
    (float* out, const uint8_t* q, const float* lo_step, size_t n, int64_t group),                 \
    (out, q, lo_step, n, group))                                                                   \
  X(void, dropout,                                                                                 \
    (float* out, const float* in, size_t n, float p, uint64_t seed, bool accumulate),              \
    (out, in, n, p, seed, accumulate))                                                             \
  X(void, rmsnorm_forward,                                                                         \
    (float* out, float* rstd, const float* x, const float* w, int64_t M, int64_t C, float eps),    \
    (out, rstd, x, w, M, C, eps))                                                                  \
  X(void, rmsnorm_backward,                                                                        \
    (float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,   \
     int64_t M, int64_t C),                                                                        \
    (dx, dw, dout, x, w, rstd, M, C))                                                              \
  X(void, rope_apply,                                                                              \
    (float* x, const int32_t* pos, const float* cos_sin, int64_t M, int64_t heads, int64_t D,      \
     int64_t row_stride, bool inverse),                                                            \
    (x, pos, cos_sin, M, heads, D, row_stride, inverse))                                           \
  X(void, swiglu_forward, (float* h, const float* gate_up, int64_t M, int64_t I),                  \
    (h, gate_up, M, I))                                                                            \
  X(void, swiglu_backward,                                                                         \
    (float* dgate_up, const float* dh, const float* gate_up, int64_t M, int64_t I),                \
    (dgate_up, dh, gate_up, M, I))

#define LATHE_DECLARE_CPU_KERNEL(ret, name, params, args) ret name params;

namespace lathe::cpu {
namespace isa_baseline {
LATHE_CPU_KERNELS(LATHE_DECLARE_CPU_KERNEL)
}
namespace isa_avx2 {
LATHE_CPU_KERNELS(LATHE_DECLARE_CPU_KERNEL)
}
namespace isa_avx512 {
LATHE_CPU_KERNELS(LATHE_DECLARE_CPU_KERNEL)
}
}  // namespace lathe::cpu
