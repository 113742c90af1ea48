// A Backend that forwards every call to another and adds up the wall time per op, so
// `lathe bench --profile` can say where a step's time goes without a profiler; while a
// trace records (train.profile_steps, core/trace.h), each call is also one trace event.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "backend/backend.h"
#include "core/trace.h"

namespace lathe {
namespace {

class ProfilingBackend final : public Backend {
  template <class F>
  auto timed(const char* op, F&& f) {
    TraceScope event(op, "op");
    const auto t0 = std::chrono::steady_clock::now();
    struct Add {
      std::map<std::string, double>& t;
      const char* op;
      std::chrono::steady_clock::time_point t0;
      ~Add() {
        t[op] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    } add{totals_, op, t0};
    return f();
  }
  void report() {
    if (!print_table_) return;
    double total = 0;
    for (auto& [k, v] : totals_) total += v;
    std::fprintf(stderr, "# time per op (all calls)\n");
    for (auto& [k, v] : totals_)
      std::fprintf(stderr, "%-18s %9.3f s %5.1f%%\n", k.c_str(), v, 100 * v / total);
  }
  std::unique_ptr<Backend> in_;
  std::map<std::string, double> totals_;
  bool print_table_;

 public:
  ProfilingBackend(std::unique_ptr<Backend> inner, bool print_table)
      : in_(std::move(inner)), print_table_(print_table) {}
  ~ProfilingBackend() override { report(); }

  std::string name() const override { return in_->name(); }
  int threads() const override { return in_->threads(); }
  std::string description() const override { return in_->description(); }
  bool host_accessible() const override { return in_->host_accessible(); }
  size_t peak_memory_bytes() const override { return in_->peak_memory_bytes(); }
  void* alloc(size_t bytes) override {
    return timed("alloc", [&] { return in_->alloc(bytes); });
  }
  void free(void* p) override { in_->free(p); }
  void copy(void* d, const void* s, size_t n) override {
    timed("copy", [&] { in_->copy(d, s, n); });
  }
  void zero(void* p, size_t n) override {
    timed("zero", [&] { in_->zero(p, n); });
  }
  void sync() override { in_->sync(); }
  bool bf16_kernels() const override { return in_->bf16_kernels(); }
  void matmul(const MatmulArgs& a) override {
    timed(a.M >= 8192 || a.N >= 8192 || a.K >= 8192 ? "matmul (lm_head)" : "matmul (layers)",
          [&] { in_->matmul(a); });
  }
  void embedding_forward(float* o, const int32_t* i, const float* t, int64_t M,
                         int64_t C) override {
    timed("embedding", [&] { in_->embedding_forward(o, i, t, M, C); });
  }
  void embedding_backward(float* d, const int32_t* i, const float* g, int64_t M,
                          int64_t C) override {
    timed("embedding", [&] { in_->embedding_backward(d, i, g, M, C); });
  }
  void gather_rows(float* d, const float* s, const int32_t* r, int64_t n, int64_t C) override {
    timed("rows", [&] { in_->gather_rows(d, s, r, n, C); });
  }
  void scatter_rows(float* d, const float* s, const int32_t* r, int64_t n, int64_t C) override {
    timed("rows", [&] { in_->scatter_rows(d, s, r, n, C); });
  }
  void rmsnorm_forward(float* o, float* r, const float* x, const float* w, int64_t M, int64_t C,
                       float eps) override {
    timed("rmsnorm", [&] { in_->rmsnorm_forward(o, r, x, w, M, C, eps); });
  }
  void rmsnorm_backward(float* dx, float* dw, const float* g, const float* x, const float* w,
                        const float* r, int64_t M, int64_t C) override {
    timed("rmsnorm", [&] { in_->rmsnorm_backward(dx, dw, g, x, w, r, M, C); });
  }
  void rope_forward(float* q, const int32_t* p, const float* cs, int64_t M, int64_t h, int64_t D,
                    int64_t s, bool inv) override {
    timed("rope", [&] { in_->rope_forward(q, p, cs, M, h, D, s, inv); });
  }
  void attention_forward(float* o, float* l, const float* q, const AttentionArgs& a) override {
    timed("attention fwd", [&] { in_->attention_forward(o, l, q, a); });
  }
  void attention_backward(float* dq, const float* g, const float* o, const float* l, const float* q,
                          const AttentionArgs& a) override {
    timed("attention bwd", [&] { in_->attention_backward(dq, g, o, l, q, a); });
  }
  void attention_decode(float* o, const float* q, float* kc, float* vc,
                        const AttentionDecodeArgs& a) override {
    timed("attention decode", [&] { in_->attention_decode(o, q, kc, vc, a); });
  }
  void swiglu_forward(float* h, const float* gu, int64_t M, int64_t I) override {
    timed("swiglu", [&] { in_->swiglu_forward(h, gu, M, I); });
  }
  void swiglu_backward(float* d, const float* g, const float* gu, int64_t M, int64_t I) override {
    timed("swiglu", [&] { in_->swiglu_backward(d, g, gu, M, I); });
  }
  double softmax_cross_entropy(float* z, const int32_t* t, int64_t M, int64_t V, float s) override {
    return timed("softmax+CE", [&] { return in_->softmax_cross_entropy(z, t, M, V, s); });
  }
  void add(float* y, const float* x, size_t n) override {
    timed("add", [&] { in_->add(y, x, n); });
  }
  void round_to_bf16(float* x, size_t n) override {
    timed("round to bf16", [&] { in_->round_to_bf16(x, n); });
  }
  void pack_bf16(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld) override {
    timed("round to bf16", [&] { in_->pack_bf16(out, in, rows, cols, ld); });
  }
  void dequantize_bf16(float* out, const uint16_t* in, size_t n) override {
    timed("dequantize", [&] { in_->dequantize_bf16(out, in, n); });
  }
  void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n,
                      int64_t block) override {
    timed("dequantize", [&] { in_->dequantize_nf4(out, codes, absmax, n, block); });
  }
  void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n,
                       int64_t group) override {
    timed("dequantize", [&] { in_->dequantize_log8(out, q, lo_step, n, group); });
  }
  void dropout(float* out, const float* in, size_t n, float p, uint64_t seed,
               bool accumulate) override {
    timed("lora dropout", [&] { in_->dropout(out, in, n, p, seed, accumulate); });
  }
  double sum_squares(const float* x, size_t n) override {
    return timed("grad norm", [&] { return in_->sum_squares(x, n); });
  }
  void adamw_step(float* p, const float* g, float* m, float* v, float* c, uint16_t* bf, size_t n,
                  const AdamWArgs& a) override {
    timed("adamw", [&] { in_->adamw_step(p, g, m, v, c, bf, n, a); });
  }
};

}  // namespace

std::unique_ptr<Backend> make_profiling_backend(std::unique_ptr<Backend> inner, bool print_table) {
  return std::make_unique<ProfilingBackend>(std::move(inner), print_table);
}

}  // namespace lathe
