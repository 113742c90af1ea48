// Products with weights packed once (generation and serving on the CPU), in each ISA
// variant this CPU runs, against the product in double precision: row counts on both
// sides of the 6-row tiles, weight counts on both sides of the 16-row panels, strides
// wider than the rows, accumulation into C, fp32 and bf16-stored weights through the
// backend. Then the property serving relies on: a row's result is bit for bit the same
// alone as in any batch.
#include "kernels/cpu/packed_matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "kernels/few_rows_product.h"

namespace lathe {
namespace {

using Product = test::FewRowsProduct<float>;

float same(float w) { return w; }

Product make(int64_t M, int64_t N, int64_t K, std::mt19937& rng) {
  return test::make_few_rows_product<float>(M, N, K, rng, same);
}

TEST(PackedMatmul, EveryIsaMatchesTheDefinition) {
  std::mt19937 rng(21);
  const int64_t shapes[][3] = {{1, 1, 1},   {1, 16, 8}, {5, 15, 13},   {6, 17, 37},
                               {7, 33, 64}, {13, 5, 1}, {32, 48, 200}, {33, 40, 1376}};
  for (const auto& s : shapes) {
    const Product p = make(s[0], s[1], s[2], rng);
    std::vector<float> panels(cpu::packed_weights_size(p.N, p.K), -1.0f);
    cpu::pack_weights(panels.data(), p.W.data(), p.N, p.K, p.ldw);
    for (float beta : {0.0f, 1.0f})
      for (const auto& [isa, fn] : LATHE_TEST_ISA_VARIANTS(matmul_packed)) {
        std::vector<float> C = p.C0;
        fn(C.data(), p.A.data(), panels.data(), p.M, p.N, p.K, p.lda, p.ldc, beta);
        const std::string at = std::string(cpu_isa_name(isa)) + " M=" + std::to_string(p.M) +
                               " N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) +
                               " beta=" + std::to_string(int(beta));
        const double worst = test::worst_relative_error(p, C, beta, same);
        // One fp32 sum in k order: at most one rounding (2^-24) of the magnitude per term.
        const double bound = double(p.K + 2) * 6e-8;
        EXPECT_LE(worst, bound) << at;
        std::printf("[ reached  ] %s: max error %.2e of sum|a*w| (bound %.1e)\n", at.c_str(), worst,
                    bound);
      }
  }
}

TEST(PackedMatmul, ARowsResultDoesNotDependOnItsBatch) {
  std::mt19937 rng(22);
  const Product p = make(32, 21, 300, rng);
  std::vector<float> panels(cpu::packed_weights_size(p.N, p.K));
  cpu::pack_weights(panels.data(), p.W.data(), p.N, p.K, p.ldw);
  for (const auto& [isa, fn] : LATHE_TEST_ISA_VARIANTS(matmul_packed)) {
    std::vector<float> batch = p.C0;
    fn(batch.data(), p.A.data(), panels.data(), p.M, p.N, p.K, p.lda, p.ldc, 1.0f);
    for (int64_t m = 0; m < p.M; ++m) {
      std::vector<float> alone(p.C0.begin() + m * p.ldc, p.C0.begin() + (m + 1) * p.ldc);
      fn(alone.data(), p.A.data() + m * p.lda, panels.data(), 1, p.N, p.K, p.lda, p.ldc, 1.0f);
      EXPECT_EQ(0, std::memcmp(alone.data(), batch.data() + m * p.ldc, size_t(p.N) * 4))
          << cpu_isa_name(isa) << ": row " << m << " differs alone and in a batch of " << p.M;
    }
  }
}

// Through the CPU backend, as the decoder packs an fp32 model's weights: from fp32 and from
// bf16 bits (widened exactly), then MatmulArgs::B_packed in place of B. A bf16 model's
// (bf16_operands) are in packed_matmul_bf16_test.cpp.
TEST(PackedMatmul, BackendPacksFp32AndBf16Weights) {
  auto be = make_cpu_backend(0);
  ASSERT_GT(be->packed_weights_size(20, 30, false), 0u);
  std::mt19937 rng(23);
  for (bool bf16 : {false, true}) {
    Product p = make(9, 20, 30, rng);
    p.ldw = p.K;  // a model's weights are dense
    p.W.resize(size_t(p.N * p.K));
    std::vector<uint16_t> bits(p.W.size());
    for (size_t i = 0; i < p.W.size(); ++i) {
      uint32_t u;
      std::memcpy(&u, &p.W[i], 4);
      bits[i] = uint16_t(u >> 16);
      if (bf16) {  // the values the bf16 weights hold
        u = uint32_t(bits[i]) << 16;
        std::memcpy(&p.W[i], &u, 4);
      }
    }
    DeviceBuffer<float> panels(*be, be->packed_weights_size(p.N, p.K, false));
    be->pack_weights(panels.get(), bf16 ? nullptr : p.W.data(), bf16 ? bits.data() : nullptr, p.N,
                     p.K, false);
    std::vector<float> C = p.C0;
    MatmulArgs a;
    a.M = p.M, a.N = p.N, a.K = p.K;
    a.A = p.A.data(), a.lda = p.lda;
    a.B_packed = panels.get(), a.ldb = p.K, a.trans_b = true;
    a.C = C.data(), a.ldc = p.ldc, a.beta = 1.0f;
    be->matmul(a);
    EXPECT_LE(test::worst_relative_error(p, C, 1.0f, same), 32 * 6e-8) << (bf16 ? "bf16" : "fp32");
  }
}

}  // namespace
}  // namespace lathe
