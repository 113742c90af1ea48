// Kernel lab: the forward products of one decode step (every layer's q|k|v, o, gate|up,
// down and the lm_head, each layer with its own weights, so they stream from memory as in
// generation), for a few rows, three ways:
//   fp32         fp32 weights, oneDNN's fp32 kernels (an fp32 model);
//   bf16 direct  bf16-stored weights read in place (cpu::matmul_bf16_weights), what a bf16
//                model runs on CPUs without bf16 dot products;
//   bf16 widen   the same weights widened to fp32, then oneDNN's fp32 kernels (what that
//                model ran before; still the path above kFewRowsBf16Weights rows);
//   fp32 packed  fp32 weights packed once into 16-row panels (cpu::matmul_packed), as
//                generation and serving hold them;
//   bf16 packed  bf16 weights packed once into 32-row panels of pairs, on AVX-512 BF16 dot
//                products (cpu::matmul_packed_bf16), as a bf16 model holds them where the
//                CPU has those ("-" elsewhere);
//   bf16 oneDNN  bf16 weights and rows on oneDNN's bf16 kernels (bf16_operands), what a
//                bf16 model's products run on there without packing ("-" elsewhere).
//   build/bench_decode_products configs/bench/llama-56m.json [ROWS...]   (default 1 8 32 64 128)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "kernels/cpu/matmul_bf16_weights.h"
#include "kernels/cpu/packed_matmul.h"
#include "kernels/cpu/packed_matmul_bf16.h"
#include "kernels/cpu/quant.h"
#include "model/llama_config.h"

using namespace lathe;

namespace {

struct Product {
  int64_t n, k;
  std::vector<float> w32;
  std::vector<uint16_t> w16;
  std::vector<float> packed;
  std::vector<uint16_t> packed16;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_CONFIG.json [ROWS...]\n", argv[0]);
    return 2;
  }
  const LlamaConfig c = llama_config_from_json_file(argv[1]);
  std::vector<int64_t> rows_list;
  for (int i = 2; i < argc; ++i) rows_list.push_back(std::stoll(argv[i]));
  if (rows_list.empty()) rows_list = {1, 8, 32, 64, 128};
  auto be = make_cpu_backend(0);
  const int64_t C = c.hidden_size, I = c.intermediate_size, S = c.q_dim() + 2 * c.kv_dim();
  std::vector<Product> products;
  auto add = [&](int64_t n, int64_t k) {
    Product p{n,  k, std::vector<float>(size_t(n * k)), std::vector<uint16_t>(size_t(n * k)),
              {}, {}};
    for (size_t i = 0; i < p.w16.size(); ++i) {
      p.w16[i] =
          uint16_t(0x3c00 + (i * 2654435761u >> 20) % 512);  // ~0.008..0.03, either sign below
      if (i & 1) p.w16[i] |= 0x8000;
    }
    cpu::dequantize_bf16(p.w32.data(), p.w16.data(), p.w16.size());
    p.packed.resize(cpu::packed_weights_size(n, k));
    cpu::pack_weights(p.packed.data(), p.w32.data(), n, k, k);
    p.packed16.resize(cpu::packed_weights_bf16_size(n, k));
    cpu::pack_weights_bf16(p.packed16.data(), nullptr, p.w16.data(), n, k, k);
    products.push_back(std::move(p));
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    add(S, C);
    add(C, c.q_dim());
    add(2 * I, C);
    add(C, I);
  }
  add(c.vocab_size, C);
  double flops_per_row = 0;
  int64_t max_n = 0, max_k = 0;
  for (const Product& p : products) {
    flops_per_row += 2.0 * double(p.n) * double(p.k);
    max_n = std::max(max_n, p.n), max_k = std::max(max_k, p.k);
  }
  std::printf("%s: %zu products a step, %.1f MFLOP a row; best of 5 steps\n", argv[1],
              products.size(), flops_per_row / 1e6);
  constexpr int kWays = 6;
  const bool ran[kWays] = {true, true, true, true, cpu::packed_bf16_products(), be->bf16_kernels()};
  std::printf("%6s %22s %22s %22s %22s %22s %22s\n", "rows", "fp32 (oneDNN)", "bf16 direct",
              "bf16 widen+oneDNN", "fp32 packed", "bf16 packed", "bf16 oneDNN");
  std::vector<float> wide(size_t(max_n * max_k));
  for (int64_t M : rows_list) {
    std::vector<float> x(size_t(M * max_k), 0.01f), y(size_t(M * max_n));
    double best[kWays] = {1e9, 1e9, 1e9, 1e9, 1e9, 1e9};
    for (int rep = 0; rep < 6; ++rep) {
      for (int way = 0; way < kWays; ++way) {
        if (!ran[way]) continue;
        const auto t0 = std::chrono::steady_clock::now();
        for (const Product& p : products) {
          MatmulArgs a;
          a.M = M, a.N = p.n, a.K = p.k;
          a.A = x.data(), a.lda = p.k;
          a.ldb = p.k, a.trans_b = true;
          a.C = y.data(), a.ldc = p.n;
          if (way == 0) {
            a.B = p.w32.data();
            be->matmul(a);
          } else if (way == 1) {
            cpu::matmul_bf16_weights(a.C, a.A, p.w16.data(), M, p.n, p.k, a.lda, a.ldb, a.ldc,
                                     0.0f);
          } else if (way == 3) {
            cpu::matmul_packed(a.C, a.A, p.packed.data(), M, p.n, p.k, a.lda, a.ldc, 0.0f);
          } else if (way == 4) {
            cpu::matmul_packed_bf16(a.C, a.A, p.packed16.data(), M, p.n, p.k, a.lda, a.ldc, 0.0f);
          } else if (way == 5) {
            a.B_bf16 = p.w16.data(), a.bf16_operands = true;
            be->matmul(a);
          } else {
            cpu::dequantize_bf16(wide.data(), p.w16.data(), p.w16.size());
            a.B = wide.data();
            be->matmul(a);
          }
        }
        if (rep > 0) best[way] = std::min(best[way], seconds_since(t0));  // rep 0 warms up
      }
    }
    auto cell = [&](double t) {
      static char buf[64];
      if (t >= 1e9) return std::string("-");
      std::snprintf(buf, sizeof buf, "%7.2f ms %6.1f GF/s", t * 1e3,
                    flops_per_row * double(M) / t / 1e9);
      return std::string(buf);
    };
    std::printf("%6lld", (long long)M);
    for (double t : best) std::printf(" %22s", cell(t).c_str());
    std::printf("\n");
  }
}
