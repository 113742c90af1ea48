// The CPU backend: oneDNN for matrix products, src/kernels/cpu for everything else,
// OpenMP threads shared by both (oneDNN is built with the OpenMP runtime on Debian).
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/onednn_matmul.h"
#include "core/error.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/packed_matmul.h"
#include "kernels/cpu/packed_matmul_bf16.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/rows.h"
#include "kernels/cpu/swiglu.h"

namespace lathe {
namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, bool bf16_kernels) : mm_(bf16_kernels) {
    if (threads > 0) omp_set_num_threads(threads);
    threads_ = omp_get_max_threads();
  }
  std::string name() const override { return "cpu"; }
  std::string description() const override {
    return "cpu (" + std::to_string(threads_) + " threads)";
  }
  bool host_accessible() const override { return true; }
  int threads() const override { return threads_; }

  void* alloc(size_t bytes) override {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded ? rounded : 64);
    if (!p) fail("out of host memory allocating ", bytes, " bytes");
    std::memset(p, 0, rounded);
    return p;
  }
  void free(void* p) override { std::free(p); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero(void* p, size_t bytes) override {
    // Parallel: gradient buffers are hundreds of MB and one core cannot fill them fast.
    char* c = static_cast<char*>(p);
    const size_t chunk = 1 << 20;
#pragma omp parallel for schedule(static)
    for (size_t off = 0; off < bytes; off += chunk)
      std::memset(c + off, 0, bytes - off < chunk ? bytes - off : chunk);
  }
  void sync() override {}

  void matmul(const MatmulArgs& a) override {
    if (a.B_packed && a.trans_b && !a.trans_a && a.alpha == 1.0f) {
      if (bf16_panels(a.bf16_operands))
        cpu::matmul_packed_bf16(a.C, a.A, reinterpret_cast<const uint16_t*>(a.B_packed), a.M, a.N,
                                a.K, a.lda, a.ldc, a.beta);
      else
        cpu::matmul_packed(a.C, a.A, a.B_packed, a.M, a.N, a.K, a.lda, a.ldc, a.beta);
      return;
    }
    mm_.run(a);
  }
  bool bf16_kernels() const override { return mm_.bf16_kernels(); }
  // bf16 products of packed weights run on bf16 dot products where the CPU has them and
  // oneDNN's bf16 kernels are allowed (the same condition as bf16_kernels()): a 32-row
  // decode step of the 56M model, products only, took 7.0 against 16.7 ms on fp32 panels
  // (bench/kernels/decode_products.cpp, 2 cores of an AMD EPYC with AVX512_BF16).
  bool bf16_panels(bool bf16_operands) const {
    return bf16_operands && mm_.bf16_kernels() && cpu::packed_bf16_products();
  }
  size_t packed_weights_size(int64_t N, int64_t K, bool bf16_operands) const override {
    if (bf16_panels(bf16_operands)) return (cpu::packed_weights_bf16_size(N, K) + 1) / 2;
    return cpu::packed_weights_size(N, K);
  }
  void pack_weights(float* panels, const float* W, const uint16_t* W16, int64_t N, int64_t K,
                    bool bf16_operands) override {
    if (bf16_panels(bf16_operands)) {
      cpu::pack_weights_bf16(reinterpret_cast<uint16_t*>(panels), W, W16, N, K, K);
      return;
    }
    std::vector<float> wide;
    if (!W) {  // bf16 bits: widened (exactly) first
      wide.resize(size_t(N * K));
      cpu::dequantize_bf16(wide.data(), W16, wide.size());
      W = wide.data();
    }
    cpu::pack_weights(panels, W, N, K, K);
  }
  std::string matmul_kernels() const override { return "oneDNN " + onednn_cpu_isa_name(); }

  void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t M,
                         int64_t C) override {
    cpu::embedding_forward(out, ids, table, M, C);
  }
  void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t M,
                          int64_t C) override {
    cpu::embedding_backward(dtable, ids, dout, M, C);
  }
  void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n,
                   int64_t C) override {
    cpu::gather_rows(dst, src, rows, n, C);
  }
  void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n,
                    int64_t C) override {
    cpu::scatter_rows(dst, src, rows, n, C);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t M,
                       int64_t C, float eps) override {
    cpu::rmsnorm_forward(out, rstd, x, w, M, C, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                        const float* rstd, int64_t M, int64_t C) override {
    cpu::rmsnorm_backward(dx, dw, dout, x, w, rstd, M, C);
  }
  void rope_forward(float* qkv, const int32_t* pos, const float* cos_sin, int64_t M, int64_t heads,
                    int64_t D, int64_t row_stride, bool inverse) override {
    cpu::rope_apply(qkv, pos, cos_sin, M, heads, D, row_stride, inverse);
  }
  void attention_forward(float* out, float* lse, const float* qkv,
                         const AttentionArgs& a) override {
    cpu::attention_forward(out, lse, qkv, a);
  }
  void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                          const float* qkv, const AttentionArgs& a) override {
    cpu::attention_backward(dqkv, dout, out, lse, qkv, a);
  }
  void attention_decode(float* out, const float* qkv, float* k_cache, float* v_cache,
                        const AttentionDecodeArgs& a) override {
    cpu::attention_decode(out, qkv, k_cache, v_cache, a);
  }
  void swiglu_forward(float* h, const float* gate_up, int64_t M, int64_t I) override {
    cpu::swiglu_forward(h, gate_up, M, I);
  }
  void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t M,
                       int64_t I) override {
    cpu::swiglu_backward(dgate_up, dh, gate_up, M, I);
  }
  double softmax_cross_entropy(float* logits, const int32_t* targets, int64_t M, int64_t V,
                               float scale) override {
    return cpu::softmax_cross_entropy(logits, targets, M, V, scale);
  }
  void round_to_bf16(float* x, size_t n) override { cpu::round_to_bf16(x, n); }
  void pack_bf16(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld) override {
    cpu::pack_bf16(out, in, rows, cols, ld);
  }
  void add(float* y, const float* x, size_t n) override { cpu::add(y, x, n); }
  double sum_squares(const float* x, size_t n) override { return cpu::sum_squares(x, n); }
  void dequantize_bf16(float* out, const uint16_t* in, size_t n) override {
    cpu::dequantize_bf16(out, in, n);
  }
  void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n,
                      int64_t block) override {
    cpu::dequantize_nf4(out, codes, absmax, n, block);
  }
  void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n,
                       int64_t group) override {
    cpu::dequantize_log8(out, q, lo_step, n, group);
  }
  void dropout(float* out, const float* in, size_t n, float p, uint64_t seed,
               bool accumulate) override {
    cpu::dropout(out, in, n, p, seed, accumulate);
  }
  void adamw_step(float* param, const float* grad, float* m, float* v, float* rounded,
                  uint16_t* bits, size_t n, const AdamWArgs& a) override {
    cpu::adamw_step(param, grad, m, v, rounded, bits, n, a);
  }

 private:
  int threads_ = 1;
  OnednnMatmul mm_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads, bool bf16_kernels) {
  return std::make_unique<CpuBackend>(threads, bf16_kernels);
}

}  // namespace lathe
