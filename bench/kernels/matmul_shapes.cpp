// Kernel lab: GFLOP/s of every matrix product one training step of a model issues, as
// the CPU backend runs them (oneDNN), to see which shapes fall short of the peak.
//   build/bench_matmul_shapes configs/bench/llama-56m.json [tokens=1024] [lora_rank=16] [fp32|bf16]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "model/llama_config.h"

using namespace lathe;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_CONFIG.json [tokens]\n", argv[0]);
    return 2;
  }
  const LlamaConfig c = llama_config_from_json_file(argv[1]);
  const int64_t M = argc > 2 ? std::stoll(argv[2]) : 1024;
  auto be = make_cpu_backend(0);
  const int64_t C = c.hidden_size, I = c.intermediate_size, S = c.q_dim() + 2 * c.kv_dim();
  struct Shape {
    const char* name;
    int64_t m, n, k;
    bool ta, tb;
    float beta;
  };
  // Forward y = x·Wᵀ; backward dx = dy·W and dW += dyᵀ·x, for each linear layer.
  std::vector<Shape> shapes;
  auto linear = [&](const char* name, int64_t out, int64_t in) {
    shapes.push_back({name, M, out, in, false, true, 0.0f});
    shapes.push_back({name, M, in, out, false, false, 0.0f});
    shapes.push_back({name, out, in, M, true, false, 1.0f});
  };
  linear("qkv", S, C);
  linear("o", C, c.q_dim());
  linear("gate_up", 2 * I, C);
  linear("down", C, I);
  linear("lm_head(256 rows)", c.vocab_size, C);
  // LoRA (rank r) on a projection: u = x·Aᵀ, y += u·Bᵀ; dB += dyᵀ·u, du = dy·B,
  // dA += duᵀ·x, dx += du·A. Skinny products: one dimension is r.
  const int64_t r = argc > 3 ? std::stoll(argv[3]) : 16;
  auto lora = [&](const char* name, int64_t out, int64_t in) {
    shapes.push_back({name, M, r, in, false, true, 0.0f});
    shapes.push_back({name, M, out, r, false, true, 1.0f});
    shapes.push_back({name, out, r, M, true, false, 1.0f});
    shapes.push_back({name, M, r, out, false, false, 0.0f});
    shapes.push_back({name, r, in, M, true, false, 1.0f});
    shapes.push_back({name, M, in, r, false, false, 1.0f});
  };
  const size_t dense_shapes = shapes.size();
  lora("lora q", c.q_dim(), C);
  lora("lora gate", I, C);
  lora("lora down", C, I);
  const char* kinds[] = {"fwd  y=x·Wᵀ", "bwd dx=dy·W", "bwd dW+=dyᵀx"};
  const char* lora_kinds[] = {"fwd u=x·Aᵀ", "fwd y+=u·Bᵀ", "bwd dB+=dyᵀu", "bwd du=dy·B",
                              "bwd dA+=duᵀx", "bwd dx+=du·A"};
  const bool bf16 = argc > 4 && std::string(argv[4]) == "bf16";
  std::printf("%s products, %s kernels\n", bf16 ? "bf16" : "fp32",
              bf16 && be->bf16_kernels() ? "bf16" : "fp32");
  double total_flops = 0, total_time = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Shape s = shapes[i];
    if (std::string(s.name).rfind("lm_head", 0) == 0) {  // chunked by 256 rows in the model
      if (s.m == M) s.m = 256;
      if (s.k == M) s.k = 256;
    }
    DeviceBuffer<float> a(*be, size_t(s.m * s.k)), b(*be, size_t(s.k * s.n)), out(*be, size_t(s.m * s.n));
    MatmulArgs args;
    args.M = s.m, args.N = s.n, args.K = s.k;
    args.A = a.get(), args.trans_a = s.ta, args.lda = s.ta ? s.m : s.k;
    args.B = b.get(), args.trans_b = s.tb, args.ldb = s.tb ? s.k : s.n;
    args.C = out.get(), args.ldc = s.n, args.beta = s.beta;
    args.bf16_operands = bf16;
    be->matmul(args);
    double best = 1e9;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      be->matmul(args);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
    total_flops += flops;
    total_time += best;
    std::printf("%-18s %-14s M=%-6lld N=%-6lld K=%-6lld %7.1f GFLOP/s %8.3f ms\n", s.name,
                i < dense_shapes ? kinds[i % 3] : lora_kinds[(i - dense_shapes) % 6], (long long)s.m, (long long)s.n, (long long)s.k, flops / best / 1e9,
                best * 1e3);
  }
  std::printf("all shapes: %.1f GFLOP/s\n", total_flops / total_time / 1e9);
}
