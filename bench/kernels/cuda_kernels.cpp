// Kernel lab for the CUDA backend: timings of the products and kernels at Llama shapes,
// one JSON object per line (name, milliseconds, the rate that bounds the op). Numbers
// for a GPU check; correctness is the tests' job (tests/backend/cuda_*_test.cpp).
//   bench_cuda_kernels [--quick]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace lathe {
namespace {

struct Lab {
  Backend& be;
  std::vector<void*> owned;
  ~Lab() {
    be.sync();
    for (void* p : owned) be.free(p);
  }
  template <class T>
  T* random(size_t n, float scale = 1.0f) {
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<T> h(n);
    for (auto& x : h) x = T(d(rng));
    void* p = be.alloc(n * sizeof(T));
    be.copy(p, h.data(), n * sizeof(T));
    owned.push_back(p);
    return static_cast<T*>(p);
  }
  template <class T>
  T* zeros(size_t n) {
    void* p = be.alloc(n * sizeof(T));
    owned.push_back(p);
    return static_cast<T*>(p);
  }
  // Best of `reps` after one warm-up, in milliseconds.
  double time_ms(const std::function<void()>& f, int reps) {
    f();
    be.sync();
    double best = 1e30;
    for (int i = 0; i < reps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      be.sync();
      best = std::min(
          best,
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  }
};

void report(const std::string& name, double ms, const char* unit, double rate) {
  std::printf("{\"name\": \"%s\", \"ms\": %.4f, \"%s\": %.1f}\n", name.c_str(), ms, unit, rate);
  std::fflush(stdout);
}

void bench_matmul(Lab& lab, int64_t M, int64_t N, int64_t K, bool bf16, int reps) {
  MatmulArgs a;
  a.M = M, a.N = N, a.K = K, a.lda = K, a.ldb = K, a.trans_b = true, a.ldc = N;
  a.A = lab.random<float>(size_t(M * K));
  a.C = lab.random<float>(size_t(M * N));
  a.bf16_operands = bf16;
  if (bf16) {
    uint16_t* b = lab.zeros<uint16_t>(size_t(N * K));
    lab.be.pack_bf16(b, lab.random<float>(size_t(N * K)), N, K, K);
    a.B_bf16 = b;
  } else {
    a.B = lab.random<float>(size_t(N * K));
  }
  const double ms = lab.time_ms([&] { lab.be.matmul(a); }, reps);
  report("matmul_" + std::string(bf16 ? "bf16w" : "fp32") + "_" + std::to_string(M) + "x" +
             std::to_string(N) + "x" + std::to_string(K),
         ms, "tflops", 2.0 * double(M) * double(N) * double(K) / ms / 1e9);
}

void bench_attention(Lab& lab, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D, int reps) {
  const int64_t S = (H + 2 * KV) * D;
  float* qkv = lab.random<float>(size_t(B * T * S));
  float* out = lab.random<float>(size_t(B * T * H * D));
  float* dout = lab.random<float>(size_t(B * T * H * D));
  float* lse = lab.random<float>(size_t(B * H * T));
  float* dqkv = lab.random<float>(size_t(B * T * S));
  const AttentionArgs a{B, T, H, KV, D, nullptr};
  // Causal: half of the T×T scores; forward 2 products, backward 5 (FlashAttention's count).
  const double flop = 2.0 * double(B) * double(H) * double(T) * double(T) * double(D);
  const std::string shape = std::to_string(B) + "x" + std::to_string(T) + "_h" + std::to_string(H) +
                            "_kv" + std::to_string(KV) + "_d" + std::to_string(D);
  const double f = lab.time_ms([&] { lab.be.attention_forward(out, lse, qkv, a); }, reps);
  report("attention_fwd_" + shape, f, "tflops", flop / f / 1e9);
  const double b =
      lab.time_ms([&] { lab.be.attention_backward(dqkv, dout, out, lse, qkv, a); }, reps);
  report("attention_bwd_" + shape, b, "tflops", 2.5 * flop / b / 1e9);
}

void bench_memory_bound(Lab& lab, int reps) {
  const int64_t M = 4096, C = 4096, V = 32000, n = int64_t(64) << 20;
  float *x = lab.random<float>(size_t(M * C)), *w = lab.random<float>(size_t(C));
  float *out = lab.random<float>(size_t(M * C)), *rstd = lab.random<float>(size_t(M));
  const double rn =
      lab.time_ms([&] { lab.be.rmsnorm_forward(out, rstd, x, w, M, C, 1e-5f); }, reps);
  report("rmsnorm_fwd_4096x4096", rn, "gbps", 2.0 * 4.0 * double(M * C) / rn / 1e6);
  float* gu = lab.random<float>(size_t(M * 2 * 14336 / 4));
  const double sw = lab.time_ms([&] { lab.be.swiglu_forward(out, gu, M / 4, 14336 / 2); }, reps);
  report("swiglu_fwd_1024x7168", sw, "gbps", 3.0 * 4.0 * double(M / 4 * 14336 / 2) / sw / 1e6);
  float* logits = lab.random<float>(size_t(1024 * V));
  std::vector<int32_t> t(1024, 7);
  auto* targets = lab.zeros<int32_t>(t.size());
  lab.be.copy(targets, t.data(), t.size() * 4);
  const double ce =
      lab.time_ms([&] { lab.be.softmax_cross_entropy(logits, targets, 1024, V, 1e-3f); }, reps);
  report("cross_entropy_1024x32000", ce, "gbps", 3.0 * 4.0 * 1024.0 * double(V) / ce / 1e6);
  float *p = lab.random<float>(size_t(n)), *g = lab.random<float>(size_t(n), 1e-3f);
  float *m = lab.zeros<float>(size_t(n)), *v = lab.zeros<float>(size_t(n));
  AdamWArgs aw;
  aw.lr = 1e-4f;
  const double ad =
      lab.time_ms([&] { lab.be.adamw_step(p, g, m, v, nullptr, nullptr, size_t(n), aw); }, reps);
  report("adamw_64M", ad, "gbps", 7.0 * 4.0 * double(n) / ad / 1e6);
  const double ss = lab.time_ms([&] { lab.be.sum_squares(g, size_t(n)); }, reps);
  report("sum_squares_64M", ss, "gbps", 4.0 * double(n) / ss / 1e6);
}

}  // namespace
}  // namespace lathe

int main(int argc, char** argv) {
  using namespace lathe;
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  auto be = make_cuda_backend(0);
  const int reps = quick ? 3 : 10;
  {
    Lab lab{*be, {}};
    for (bool bf16 : {false, true}) bench_matmul(lab, 4096, 4096, 4096, bf16, reps);
    bench_matmul(lab, 8192, 14336, 4096, true, reps);
  }
  {
    Lab lab{*be, {}};
    bench_attention(lab, 1, 4096, 32, 8, 128, reps);
    if (!quick) bench_attention(lab, 4, 2048, 32, 8, 64, reps);
  }
  {
    Lab lab{*be, {}};
    bench_memory_bound(lab, reps);
  }
  return 0;
}
