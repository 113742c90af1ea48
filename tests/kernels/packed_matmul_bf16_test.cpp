// A bf16 model's products with weights packed once into bf16 panels (generation and
// serving on CPUs with AVX-512 BF16 dot products), in each ISA variant this CPU runs,
// against the product in double precision: rows on both sides of the 12-row tiles, weights
// on both sides of the 32-row panels, odd K (a padded pair), strides wider than the rows,
// accumulation into C, and panels packed from fp32 and from bf16 bits. Then the panel
// layout itself, a row's result alone and in any batch, and the backend choosing these
// panels exactly where the CPU has the instructions.
#include "kernels/cpu/packed_matmul_bf16.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "core/dtype.h"
#include "kernels/few_rows_product.h"

namespace lathe {
namespace {

using Product = test::FewRowsProduct<float>;

// A bf16 model's operands: every value bf16-valued (the kernel's rounding of the rows is
// then exact, and so is every product in fp32).
float to_bf16_value(float x) { return bf16_to_f32(f32_to_bf16(x)); }
float same(float w) { return w; }

Product make(int64_t M, int64_t N, int64_t K, std::mt19937& rng) {
  Product p = test::make_few_rows_product<float>(M, N, K, rng, to_bf16_value);
  for (float& a : p.A) a = to_bf16_value(a);
  return p;
}

std::vector<uint16_t> bits_of(const Product& p) {
  std::vector<uint16_t> b(p.W.size());
  for (size_t i = 0; i < b.size(); ++i) b[i] = f32_to_bf16(p.W[i]);
  return b;
}

TEST(PackedMatmulBf16, EveryIsaMatchesTheDefinition) {
  std::mt19937 rng(31);
  const int64_t shapes[][3] = {{1, 1, 1},    {1, 32, 8}, {5, 31, 13},   {12, 33, 37},
                               {13, 65, 64}, {25, 5, 2}, {32, 48, 201}, {33, 40, 1376}};
  for (const auto& s : shapes) {
    const Product p = make(s[0], s[1], s[2], rng);
    const std::vector<uint16_t> bits = bits_of(p);
    for (bool from_bits : {false, true}) {
      std::vector<uint16_t> panels(cpu::packed_weights_bf16_size(p.N, p.K), 0xffff);
      cpu::pack_weights_bf16(panels.data(), from_bits ? nullptr : p.W.data(),
                             from_bits ? bits.data() : nullptr, p.N, p.K, p.ldw);
      for (float beta : {0.0f, 1.0f})
        for (const auto& [isa, fn] : LATHE_TEST_ISA_VARIANTS(matmul_packed_bf16)) {
          std::vector<float> C = p.C0;
          fn(C.data(), p.A.data(), panels.data(), p.M, p.N, p.K, p.lda, p.ldc, beta);
          const std::string at = std::string(cpu_isa_name(isa)) + " M=" + std::to_string(p.M) +
                                 " N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) +
                                 " beta=" + std::to_string(int(beta)) +
                                 (from_bits ? " bits" : " fp32");
          const double worst = test::worst_relative_error(p, C, beta, same);
          // Exact products, one fp32 sum: at most one rounding (2^-24) of the magnitude per
          // term, as for fp32 panels.
          const double bound = double(p.K + 2) * 6e-8;
          EXPECT_LE(worst, bound) << at;
          if (!from_bits)
            std::printf("[ reached  ] %s: max error %.2e of sum|a*w| (bound %.1e)\n", at.c_str(),
                        worst, bound);
        }
    }
  }
}

// The layout matmul_packed_bf16's header promises: W[32p + j, 2q + i] at [p][q][j][i], rows
// past N and the k past an odd K zero.
TEST(PackedMatmulBf16, PanelLayout) {
  const int64_t N = 40, K = 5, ldw = 7, Q = 3, P = 2;
  std::vector<uint16_t> W(size_t(N * ldw));
  for (size_t i = 0; i < W.size(); ++i) W[i] = uint16_t(i + 1);
  ASSERT_EQ(cpu::packed_weights_bf16_size(N, K), size_t(P * Q * 32 * 2));
  std::vector<uint16_t> panels(cpu::packed_weights_bf16_size(N, K), 0xffff);
  cpu::pack_weights_bf16(panels.data(), nullptr, W.data(), N, K, ldw);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t q = 0; q < Q; ++q)
      for (int64_t j = 0; j < 32; ++j)
        for (int64_t i = 0; i < 2; ++i) {
          const int64_t n = 32 * p + j, k = 2 * q + i;
          const uint16_t want = n < N && k < K ? W[size_t(n * ldw + k)] : 0;
          ASSERT_EQ(panels[size_t(((p * Q + q) * 32 + j) * 2 + i)], want)
              << "row " << n << " k " << k;
        }
}

TEST(PackedMatmulBf16, ARowsResultDoesNotDependOnItsBatch) {
  std::mt19937 rng(32);
  const Product p = make(32, 45, 300, rng);
  std::vector<uint16_t> panels(cpu::packed_weights_bf16_size(p.N, p.K));
  cpu::pack_weights_bf16(panels.data(), p.W.data(), nullptr, p.N, p.K, p.ldw);
  for (const auto& [isa, fn] : LATHE_TEST_ISA_VARIANTS(matmul_packed_bf16)) {
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

TEST(PackedMatmulBf16, OnlyTheAvx512VariantUsesDotProductsAndOnlyWithAvx512Bf16) {
  for (const auto& [isa, fn] : LATHE_TEST_ISA_VARIANTS(packed_bf16_products))
    EXPECT_EQ(fn(), isa == CpuIsa::Avx512 && cpu_has_avx512_bf16()) << cpu_isa_name(isa);
  std::printf("[ reached  ] this CPU %s AVX512_BF16; kernels on %s: bf16 panels %s\n",
              cpu_has_avx512_bf16() ? "has" : "lacks", cpu_isa_name(cpu_isa()),
              cpu::packed_bf16_products() ? "on dot products" : "not used");
}

// Through the CPU backend, as the decoder packs a bf16 model's weights (bf16_operands):
// bf16 panels where the CPU has bf16 dot products, fp32 ones elsewhere, from fp32 values
// and from bf16 bits; either way the product of the bf16-valued operands to fp32 accuracy.
TEST(PackedMatmulBf16, BackendPacksForBf16Products) {
  auto be = make_cpu_backend(0);
  std::mt19937 rng(33);
  const bool dot = be->bf16_kernels() && cpu::packed_bf16_products();
  const size_t fp32_floats = be->packed_weights_size(70, 30, false);
  // bf16 panels: 96 rows (3 panels of 32) × 30 k in bf16 take 1440 floats; fp32 ones 80 × 30.
  EXPECT_EQ(be->packed_weights_size(70, 30, true), dot ? size_t(96 * 30 / 2) : fp32_floats);
  for (bool from_bits : {false, true}) {
    Product p = make(9, 70, 30, rng);
    p.ldw = p.K;  // a model's weights are dense
    p.W.resize(size_t(p.N * p.K));
    const std::vector<uint16_t> bits = bits_of(p);
    DeviceBuffer<float> panels(*be, be->packed_weights_size(p.N, p.K, true));
    be->pack_weights(panels.get(), from_bits ? nullptr : p.W.data(),
                     from_bits ? bits.data() : nullptr, p.N, p.K, true);
    std::vector<float> C = p.C0;
    MatmulArgs a;
    a.M = p.M, a.N = p.N, a.K = p.K;
    a.A = p.A.data(), a.lda = p.lda;
    a.B_packed = panels.get(), a.ldb = p.K, a.trans_b = true, a.bf16_operands = true;
    a.C = C.data(), a.ldc = p.ldc, a.beta = 1.0f;
    be->matmul(a);
    EXPECT_LE(test::worst_relative_error(p, C, 1.0f, same), 32 * 6e-8)
        << (from_bits ? "from bits" : "from fp32") << (dot ? ", bf16 panels" : ", fp32 panels");
  }
}

}  // namespace
}  // namespace lathe
