// A Backend that passes every call to another: the base of decorators that change or
// watch one kind of call (a test's operand check) and leave the rest alone.
#pragma once
#include <memory>
#include <string>

#include "backend/backend.h"

namespace lathe {

class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<Backend> inner) : in_(std::move(inner)) {}

  std::string name() const override { return in_->name(); }
  int threads() const override { return in_->threads(); }
  std::string description() const override { return in_->description(); }
  bool host_accessible() const override { return in_->host_accessible(); }
  size_t peak_memory_bytes() const override { return in_->peak_memory_bytes(); }
  void* alloc(size_t bytes) override { return in_->alloc(bytes); }
  void free(void* p) override { in_->free(p); }
  void copy(void* d, const void* s, size_t n) override { in_->copy(d, s, n); }
  void zero(void* p, size_t n) override { in_->zero(p, n); }
  void sync() override { in_->sync(); }
  void matmul(const MatmulArgs& a) override { in_->matmul(a); }
  bool bf16_kernels() const override { return in_->bf16_kernels(); }
  size_t packed_weights_size(int64_t N, int64_t K, bool bf16) const override {
    return in_->packed_weights_size(N, K, bf16);
  }
  void pack_weights(float* panels, const float* W, const uint16_t* W16, int64_t N, int64_t K,
                    bool bf16) override {
    in_->pack_weights(panels, W, W16, N, K, bf16);
  }
  std::string matmul_kernels() const override { return in_->matmul_kernels(); }
  void embedding_forward(float* o, const int32_t* i, const float* t, int64_t M,
                         int64_t C) override {
    in_->embedding_forward(o, i, t, M, C);
  }
  void embedding_backward(float* d, const int32_t* i, const float* g, int64_t M,
                          int64_t C) override {
    in_->embedding_backward(d, i, g, M, C);
  }
  void gather_rows(float* d, const float* s, const int32_t* r, int64_t n, int64_t C) override {
    in_->gather_rows(d, s, r, n, C);
  }
  void scatter_rows(float* d, const float* s, const int32_t* r, int64_t n, int64_t C) override {
    in_->scatter_rows(d, s, r, n, C);
  }
  void rmsnorm_forward(float* o, float* r, const float* x, const float* w, int64_t M, int64_t C,
                       float eps) override {
    in_->rmsnorm_forward(o, r, x, w, M, C, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* g, const float* x, const float* w,
                        const float* r, int64_t M, int64_t C) override {
    in_->rmsnorm_backward(dx, dw, g, x, w, r, M, C);
  }
  void rope_forward(float* q, const int32_t* p, const float* cs, int64_t M, int64_t h, int64_t D,
                    int64_t s, bool inv) override {
    in_->rope_forward(q, p, cs, M, h, D, s, inv);
  }
  void attention_forward(float* o, float* l, const float* q, const AttentionArgs& a) override {
    in_->attention_forward(o, l, q, a);
  }
  void attention_backward(float* dq, const float* g, const float* o, const float* l, const float* q,
                          const AttentionArgs& a) override {
    in_->attention_backward(dq, g, o, l, q, a);
  }
  void attention_decode(float* o, const float* q, float* kc, float* vc,
                        const AttentionDecodeArgs& a) override {
    in_->attention_decode(o, q, kc, vc, a);
  }
  void swiglu_forward(float* h, const float* gu, int64_t M, int64_t I) override {
    in_->swiglu_forward(h, gu, M, I);
  }
  void swiglu_backward(float* d, const float* g, const float* gu, int64_t M, int64_t I) override {
    in_->swiglu_backward(d, g, gu, M, I);
  }
  double softmax_cross_entropy(float* z, const int32_t* t, int64_t M, int64_t V, float s) override {
    return in_->softmax_cross_entropy(z, t, M, V, s);
  }
  void round_to_bf16(float* x, size_t n) override { in_->round_to_bf16(x, n); }
  void pack_bf16(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld) override {
    in_->pack_bf16(out, in, rows, cols, ld);
  }
  void add(float* y, const float* x, size_t n) override { in_->add(y, x, n); }
  void dequantize_bf16(float* out, const uint16_t* in, size_t n) override {
    in_->dequantize_bf16(out, in, n);
  }
  void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n,
                      int64_t block) override {
    in_->dequantize_nf4(out, codes, absmax, n, block);
  }
  void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n,
                       int64_t group) override {
    in_->dequantize_log8(out, q, lo_step, n, group);
  }
  void dropout(float* out, const float* in, size_t n, float p, uint64_t seed,
               bool accumulate) override {
    in_->dropout(out, in, n, p, seed, accumulate);
  }
  double sum_squares(const float* x, size_t n) override { return in_->sum_squares(x, n); }
  void adamw_step(float* p, const float* g, float* m, float* v, float* c, uint16_t* bf, size_t n,
                  const AdamWArgs& a) override {
    in_->adamw_step(p, g, m, v, c, bf, n, a);
  }

 protected:
  std::unique_ptr<Backend> in_;
};

}  // namespace lathe
