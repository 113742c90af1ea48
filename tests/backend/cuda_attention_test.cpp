// The CUDA attention kernels (training forward and backward, KV-cache decoding) and the
// bf16 products against the CPU backend, on fresh random inputs: the CPU kernel tests'
// shapes (short rows, a 150-token row whose documents span several 32-key tiles) and
// Llama shapes (GQA 32/8 with heads of 128, heads of 64, packed documents). Needs a GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/cuda_test_util.h"
#include "core/dtype.h"

namespace lathe {
namespace {

class CudaAttention : public test::CudaVsCpu {
 protected:
  // Even rows hold three documents, odd rows two (as the CPU attention test).
  static std::vector<int32_t> doc_starts(int64_t B, int64_t T) {
    std::vector<int32_t> ds(size_t(B * T));
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<int64_t> cuts = b % 2 == 0
                                            ? std::vector<int64_t>{0, T * 27 / 100, T * 73 / 100}
                                            : std::vector<int64_t>{0, T * 60 / 100};
      for (int64_t t = 0; t < T; ++t) {
        int64_t s = 0;
        for (int64_t c : cuts)
          if (c <= t) s = c;
        ds[size_t(b * T + t)] = int32_t(s);
      }
    }
    return ds;
  }

  void check(int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D, bool docs) {
    const std::string at = "B=" + std::to_string(B) + " T=" + std::to_string(T) +
                           " H=" + std::to_string(H) + " KV=" + std::to_string(KV) +
                           " D=" + std::to_string(D) + (docs ? " docs" : "");
    const int64_t S = (H + 2 * KV) * D;
    const std::vector<float> qkv = normal(size_t(B * T * S)), dout = normal(size_t(B * T * H * D));
    const std::vector<int32_t> ds = doc_starts(B, T);
    AttentionArgs a{B, T, H, KV, D, docs ? ds.data() : nullptr};
    std::vector<float> out(size_t(B * T * H * D)), lse(size_t(B * H * T)), dqkv(qkv.size());
    cpu->attention_forward(out.data(), lse.data(), qkv.data(), a);
    cpu->attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), a);

    AttentionArgs ga = a;
    ga.doc_start = docs ? up(ds) : nullptr;
    const float* g_qkv = up(qkv);
    float *g_out = up(std::vector<float>(out.size(), 7.0f)),
          *g_lse = up(std::vector<float>(lse.size(), 7.0f));
    float* g_dqkv = up(std::vector<float>(dqkv.size(), 7.0f));  // all of it must be written
    gpu->attention_forward(g_out, g_lse, g_qkv, ga);
    expect_close(down(g_out, out.size()), out, 1e-4f, "attention out " + at);
    expect_close(down(g_lse, lse.size()), lse, 1e-4f, "attention lse " + at);
    // The backward from the CPU's out and lse: its own error only.
    gpu->attention_backward(g_dqkv, up(dout), up(out), up(lse), g_qkv, ga);
    expect_close(down(g_dqkv, dqkv.size()), dqkv, 1e-4f, "attention dqkv " + at);
  }
};

TEST_F(CudaAttention, CpuTestShapes) {
  for (auto [H, KV] : {std::pair<int64_t, int64_t>{2, 2}, {4, 2}, {4, 1}})
    for (int64_t T : {7, 150})
      for (int64_t D : {8, 16})
        for (bool docs : {false, true}) check(2, T, H, KV, D, docs);
}

TEST_F(CudaAttention, LlamaShapes) {
  check(2, 512, 32, 8, 128, true);  // Llama 3 8B heads, packed documents
  check(1, 384, 32, 8, 128, false);
  check(2, 1024, 8, 8, 64, true);  // heads of 64 (Llama 3.2 1B: 32/8 × 64)
  check(1, 300, 32, 8, 64, true);
  check(1, 77, 4, 2, 256, false);  // the largest head size supported
}

// Decoding against the CPU: a 5-token prompt prefilled into slot 2 (causal among itself),
// and single new tokens of slots 0 and 3 at later positions, over caches full of earlier
// random keys.
TEST_F(CudaAttention, DecodeWritesCacheAndAttends) {
  for (auto [H, KV, D, cap] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{4, 2, 16, 64},
                               {32, 8, 128, 2048},
                               {32, 8, 64, 1024}}) {
    const int64_t slots = 4;
    std::vector<int32_t> slot = {2, 2, 2, 2, 2, 0, 3},
                         pos = {0, 1, 2, 3, 4, int32_t(cap - 1), int32_t(cap / 3)};
    const int64_t M = int64_t(slot.size()), S = (H + 2 * KV) * D;
    const std::vector<float> qkv = normal(size_t(M * S));
    std::vector<float> kc = normal(size_t(slots * KV * cap * D)), vc = normal(kc.size());
    std::vector<float> out(size_t(M * H * D));
    float *g_kc = up(kc), *g_vc = up(vc), *g_out = up(out);
    AttentionDecodeArgs a{M, H, KV, D, cap, slot.data(), pos.data()};
    cpu->attention_decode(out.data(), qkv.data(), kc.data(), vc.data(), a);
    a.slot = up(slot);
    a.pos = up(pos);
    gpu->attention_decode(g_out, up(qkv), g_kc, g_vc, a);
    const std::string at = "H=" + std::to_string(H) + " D=" + std::to_string(D);
    expect_close(down(g_out, out.size()), out, 1e-4f, "decode out " + at);
    expect_close(down(g_kc, kc.size()), kc, 0.0f, "decode k cache " + at);
    expect_close(down(g_vc, vc.size()), vc, 0.0f, "decode v cache " + at);
  }
}

// bf16 products: A holds bf16 values, B is given only as bf16 bits (a bf16 model's
// weights). The CPU multiplies the same values in fp32; both accumulate in fp32.
TEST_F(CudaAttention, MatmulWithBf16StoredWeights) {
  struct Shape {
    int64_t M, N, K;
  };
  for (Shape s : {Shape{67, 45, 91}, Shape{256, 2048, 2048}, Shape{128, 4096, 1024}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 1.0f}) {
          std::vector<float> A = normal(size_t(s.M * s.K)), B = normal(size_t(s.K * s.N));
          std::vector<float> C = normal(size_t(s.M * s.N));
          for (float& x : A) x = bf16_to_f32(f32_to_bf16(x));
          std::vector<uint16_t> Bbits(B.size());
          for (size_t i = 0; i < B.size(); ++i)
            Bbits[i] = f32_to_bf16(B[i]), B[i] = bf16_to_f32(Bbits[i]);
          MatmulArgs args;
          args.M = s.M, args.N = s.N, args.K = s.K, args.trans_a = ta, args.trans_b = tb;
          args.lda = ta ? s.M : s.K, args.ldb = tb ? s.K : s.N, args.ldc = s.N, args.beta = beta;
          args.bf16_operands = true;
          float* g_c = up(C);
          MatmulArgs g = args;
          g.A = up(A), g.B = nullptr, g.B_bf16 = up(Bbits), g.C = g_c;
          gpu->matmul(g);
          gpu->matmul(g);  // the cached algorithm: same result again (beta = 1 adds it twice)
          args.A = A.data(), args.B = B.data(), args.C = C.data(), args.bf16_operands = false;
          cpu->matmul(args);
          if (beta != 0.0f) cpu->matmul(args);
          expect_close(down(g_c, C.size()), C, 1e-4f,
                       "bf16 matmul " + std::to_string(s.M) + "x" + std::to_string(s.N) + "x" +
                           std::to_string(s.K) + " ta=" + std::to_string(ta) +
                           " tb=" + std::to_string(tb) + " beta=" + std::to_string(beta));
        }
}

// fp32 products at a model shape: COMPUTE_32F (no TF32) keeps them within fp32 rounding.
TEST_F(CudaAttention, MatmulFp32IsNotTf32) {
  const int64_t M = 256, N = 2048, K = 2048;
  const std::vector<float> A = normal(size_t(M * K)), B = normal(size_t(K * N));
  std::vector<float> C(size_t(M * N));
  MatmulArgs args;
  args.M = M, args.N = N, args.K = K, args.lda = K, args.ldb = N, args.ldc = N;
  MatmulArgs g = args;
  float* g_c = up(C);
  g.A = up(A), g.B = up(B), g.C = g_c;
  gpu->matmul(g);
  args.A = A.data(), args.B = B.data(), args.C = C.data();
  cpu->matmul(args);
  // TF32 (10-bit mantissa) would be off by ~1e-3 relative here.
  expect_close(down(g_c, C.size()), C, 1e-5f, "fp32 matmul");
}

}  // namespace
}  // namespace lathe
