// A CPU backend whose memory the host cannot touch, like a GPU's: the tests' stand-in for
// a device, so code above the seam that reads or writes backend memory directly fails on
// every machine, not only where a GPU is lent.
//
// Allocations come from one reserved arena that stays PROT_NONE except while one of the
// backend's own calls runs (each call opens it, runs the CPU kernel, and closes it: two
// mprotect calls). A host read or write of backend memory elsewhere is a SIGSEGV, which
// install_host_access_trap() reports with a backtrace naming the offending function.
// Kernel arguments must also point into the arena, so host memory handed to a kernel
// (which a GPU could not read) fails too. copy() takes host memory on either side.
// Single-threaded callers only (one process, no communication thread).
#pragma once
#include <execinfo.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "backend/forwarding_backend.h"
#include "core/error.h"

namespace lathe::testing {

class StrictBackend final : public ForwardingBackend {
 public:
  // 64 GiB of address space, reserved but neither readable nor backed until used.
  static constexpr size_t kArenaBytes = size_t(64) << 30;

  explicit StrictBackend(std::unique_ptr<Backend> inner) : ForwardingBackend(std::move(inner)) {
    void* p =
        mmap(nullptr, kArenaBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    LATHE_CHECK(p != MAP_FAILED,
                "strict backend: cannot reserve its arena: ", std::strerror(errno));
    base_ = static_cast<char*>(p);
    current() = this;
  }
  ~StrictBackend() override {
    if (current() == this) current() = nullptr;
    munmap(base_, kArenaBytes);
  }

  bool host_accessible() const override { return false; }
  std::string description() const override { return "strict " + in_->description(); }

  // Page-aligned, never reused (freed pages are returned to the system): a stale pointer
  // cannot alias a later allocation.
  void* alloc(size_t bytes) override {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t rounded = (bytes + page - 1) / page * page + page;  // one guard page after
    LATHE_CHECK(used_ + rounded <= kArenaBytes, "strict backend: arena exhausted");
    char* p = base_ + used_;
    used_ += rounded;
    sizes_[p] = rounded;
    return p;
  }
  void free(void* p) override {
    auto it = sizes_.find(p);
    LATHE_CHECK(it != sizes_.end(), "strict backend: free of a pointer it did not allocate");
    madvise(p, it->second, MADV_DONTNEED);  // the pages go back; the addresses stay reserved
    sizes_.erase(it);
  }
  void copy(void* d, const void* s, size_t n) override {
    Open o(*this);
    if (contains(s) && !contains(d)) largest_read_back_ = std::max(largest_read_back_, n);
    in_->copy(d, s, n);
  }
  // The most bytes one copy() has moved from backend to host memory since the last reset:
  // what host code held of backend memory at once (a streamed save's bound).
  size_t largest_read_back() const { return largest_read_back_; }
  void reset_largest_read_back() { largest_read_back_ = 0; }
  void zero(void* p, size_t n) override {
    Open o(*this);
    need(p, "zero");
    in_->zero(p, n);
  }
  void matmul(const MatmulArgs& a) override {
    Open o(*this);
    need(a.A, "matmul A"), need(a.B, "matmul B"), need(a.C, "matmul C"),
        need(a.B_bf16, "matmul B_bf16"), need(a.B_packed, "matmul B_packed");
    in_->matmul(a);
  }
  void pack_weights(float* panels, const float* W, const uint16_t* W16, int64_t N, int64_t K,
                    bool bf16) override {
    Open o(*this);
    need(panels, "pack_weights panels"), need(W, "pack_weights W"), need(W16, "pack_weights W16");
    in_->pack_weights(panels, W, W16, N, K, bf16);
  }
  void embedding_forward(float* o, const int32_t* i, const float* t, int64_t M,
                         int64_t C) override {
    Open g(*this);
    need(o, "embedding out"), need(i, "embedding ids"), need(t, "embedding table");
    in_->embedding_forward(o, i, t, M, C);
  }
  void embedding_backward(float* d, const int32_t* i, const float* g, int64_t M,
                          int64_t C) override {
    Open o(*this);
    need(d, "embedding dtable"), need(i, "embedding ids"), need(g, "embedding dout");
    in_->embedding_backward(d, i, g, M, C);
  }
  void gather_rows(float* d, const float* s, const int32_t* r, int64_t n, int64_t C) override {
    Open o(*this);
    need(d, "gather_rows dst"), need(s, "gather_rows src"), need(r, "gather_rows rows");
    in_->gather_rows(d, s, r, n, C);
  }
  void scatter_rows(float* d, const float* s, const int32_t* r, int64_t n, int64_t C) override {
    Open o(*this);
    need(d, "scatter_rows dst"), need(s, "scatter_rows src"), need(r, "scatter_rows rows");
    in_->scatter_rows(d, s, r, n, C);
  }
  void rmsnorm_forward(float* o, float* r, const float* x, const float* w, int64_t M, int64_t C,
                       float eps) override {
    Open g(*this);
    need(o, "rmsnorm out"), need(r, "rmsnorm rstd"), need(x, "rmsnorm x"), need(w, "rmsnorm w");
    in_->rmsnorm_forward(o, r, x, w, M, C, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* g, const float* x, const float* w,
                        const float* r, int64_t M, int64_t C) override {
    Open o(*this);
    need(dx, "rmsnorm dx"), need(dw, "rmsnorm dw"), need(g, "rmsnorm dout"), need(x, "rmsnorm x"),
        need(w, "rmsnorm w"), need(r, "rmsnorm rstd");
    in_->rmsnorm_backward(dx, dw, g, x, w, r, M, C);
  }
  void rope_forward(float* q, const int32_t* p, const float* cs, int64_t M, int64_t h, int64_t D,
                    int64_t s, bool inv) override {
    Open o(*this);
    need(q, "rope qkv"), need(p, "rope positions"), need(cs, "rope table");
    in_->rope_forward(q, p, cs, M, h, D, s, inv);
  }
  void attention_forward(float* o, float* l, const float* q, const AttentionArgs& a) override {
    Open g(*this);
    need(o, "attention out"), need(l, "attention lse"), need(q, "attention qkv"),
        need(a.doc_start, "attention doc_start");
    in_->attention_forward(o, l, q, a);
  }
  void attention_backward(float* dq, const float* g, const float* o, const float* l, const float* q,
                          const AttentionArgs& a) override {
    Open x(*this);
    need(dq, "attention dqkv"), need(g, "attention dout"), need(o, "attention out"),
        need(l, "attention lse"), need(q, "attention qkv"),
        need(a.doc_start, "attention doc_start");
    in_->attention_backward(dq, g, o, l, q, a);
  }
  void attention_decode(float* o, const float* q, float* kc, float* vc,
                        const AttentionDecodeArgs& a) override {
    Open g(*this);
    need(o, "decode out"), need(q, "decode qkv"), need(kc, "decode k cache"),
        need(vc, "decode v cache"), need(a.slot, "decode slot"), need(a.pos, "decode pos");
    in_->attention_decode(o, q, kc, vc, a);
  }
  void swiglu_forward(float* h, const float* gu, int64_t M, int64_t I) override {
    Open o(*this);
    need(h, "swiglu out"), need(gu, "swiglu gate_up");
    in_->swiglu_forward(h, gu, M, I);
  }
  void swiglu_backward(float* d, const float* g, const float* gu, int64_t M, int64_t I) override {
    Open o(*this);
    need(d, "swiglu dgate_up"), need(g, "swiglu dh"), need(gu, "swiglu gate_up");
    in_->swiglu_backward(d, g, gu, M, I);
  }
  double softmax_cross_entropy(float* z, const int32_t* t, int64_t M, int64_t V, float s) override {
    Open o(*this);
    need(z, "cross-entropy logits"), need(t, "cross-entropy targets");
    return in_->softmax_cross_entropy(z, t, M, V, s);
  }
  void round_to_bf16(float* x, size_t n) override {
    Open o(*this);
    need(x, "round_to_bf16");
    in_->round_to_bf16(x, n);
  }
  void pack_bf16(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld) override {
    Open o(*this);
    need(out, "pack_bf16 out"), need(in, "pack_bf16 in");
    in_->pack_bf16(out, in, rows, cols, ld);
  }
  void add(float* y, const float* x, size_t n) override {
    Open o(*this);
    need(y, "add y"), need(x, "add x");
    in_->add(y, x, n);
  }
  void dequantize_bf16(float* out, const uint16_t* in, size_t n) override {
    Open o(*this);
    need(out, "dequantize_bf16 out"), need(in, "dequantize_bf16 in");
    in_->dequantize_bf16(out, in, n);
  }
  void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n,
                      int64_t block) override {
    Open o(*this);
    need(out, "nf4 out"), need(codes, "nf4 codes"), need(absmax, "nf4 absmax");
    in_->dequantize_nf4(out, codes, absmax, n, block);
  }
  void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n,
                       int64_t group) override {
    Open o(*this);
    need(out, "log8 out"), need(q, "log8 codes"), need(lo_step, "log8 lo_step");
    in_->dequantize_log8(out, q, lo_step, n, group);
  }
  void dropout(float* out, const float* in, size_t n, float p, uint64_t seed,
               bool accumulate) override {
    Open o(*this);
    need(out, "dropout out"), need(in, "dropout in");
    in_->dropout(out, in, n, p, seed, accumulate);
  }
  double sum_squares(const float* x, size_t n) override {
    Open o(*this);
    need(x, "sum_squares");
    return in_->sum_squares(x, n);
  }
  void adamw_step(float* p, const float* g, float* m, float* v, float* c, uint16_t* bf, size_t n,
                  const AdamWArgs& a) override {
    Open o(*this);
    need(p, "adamw param"), need(g, "adamw grad"), need(m, "adamw m"), need(v, "adamw v"),
        need(c, "adamw rounded"), need(bf, "adamw bits");
    in_->adamw_step(p, g, m, v, c, bf, n, a);
  }

  bool contains(const void* p) const {
    const char* c = static_cast<const char*>(p);
    return c >= base_ && c < base_ + kArenaBytes;
  }
  // The live instance, for the SIGSEGV handler.
  static StrictBackend*& current() {
    static StrictBackend* s = nullptr;
    return s;
  }

 private:
  // Opens the arena for the duration of one call.
  struct Open {
    StrictBackend& b;
    explicit Open(StrictBackend& be) : b(be) {
      if (b.depth_++ == 0 && b.used_) mprotect(b.base_, b.used_, PROT_READ | PROT_WRITE);
    }
    ~Open() {
      if (--b.depth_ == 0 && b.used_) mprotect(b.base_, b.used_, PROT_NONE);
    }
  };
  void need(const void* p, const char* what) const {
    LATHE_CHECK(!p || contains(p), "strict backend: ", what,
                " is host memory; a kernel can only read backend memory");
  }

  char* base_ = nullptr;
  size_t used_ = 0;
  int depth_ = 0;
  size_t largest_read_back_ = 0;
  std::unordered_map<void*, size_t> sizes_;
};

// A host access to the arena outside the backend's calls ends the process with a message
// and a backtrace (the frame below the handler is the culprit); other faults keep their
// default action.
inline void install_host_access_trap() {
  struct sigaction sa {};
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sa.sa_sigaction = [](int sig, siginfo_t* info, void*) {
    StrictBackend* b = StrictBackend::current();
    if (b && b->contains(info->si_addr)) {
      static const char msg[] =
          "\nhost code touched backend memory outside the backend (it must go through "
          "Backend::copy or backend/host_staging.h); backtrace:\n";
      (void)!write(2, msg, sizeof msg - 1);
      void* frames[64];
      backtrace_symbols_fd(frames, backtrace(frames, 64), 2);
    }
    signal(sig, SIG_DFL);
    raise(sig);
  };
  sigaction(SIGSEGV, &sa, nullptr);
}

}  // namespace lathe::testing
