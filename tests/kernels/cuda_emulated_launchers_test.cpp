// The CUDA launchers of src/kernels/cuda/*.cu (grid and block sizes, shared-memory sizes,
// the head-size dispatch, the two-stage reductions' second launch), compiled for the host
// against tests/kernels/cuda_emulation.h and run against the CPU kernels at small shapes.
// Together with cuda_emulated_*_test.cpp this leaves only the CUDA runtime, cuBLASLt and
// the hardware itself to tests/backend on a GPU.
#include "kernels/cuda_emulation.h"
// The emulation comes first: it stands in for the CUDA runtime in the kernel headers.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/fd_check.h"
#include "model/nf4.h"

// The launchers compiled a second time, for the host: renaming their namespace keeps these
// copies apart from lathe_cuda's in a CUDA build (the same names, linked into one binary).
#define cuda emulated_cuda
#include "kernels/cuda/adamw.cu"
#include "kernels/cuda/attention.cu"
#include "kernels/cuda/attention_decode.cu"
#include "kernels/cuda/cross_entropy.cu"
#include "kernels/cuda/elementwise.cu"
#include "kernels/cuda/embedding.cu"
#include "kernels/cuda/quant.cu"
#include "kernels/cuda/rmsnorm.cu"
#include "kernels/cuda/rope.cu"
#include "kernels/cuda/swiglu.cu"
#undef cuda

namespace lathe {
namespace {

namespace gpu = emulated_cuda;

class EmulatedCudaLaunchers : public ::testing::Test {
 protected:
  void SetUp() override { rng.seed(seed); }
  std::vector<float> normal(size_t n) { return test::normal(n, uint32_t(rng())); }
  void expect_close(const std::vector<float>& got, const std::vector<float>& want, float rel,
                    const std::string& what) {
    ASSERT_EQ(got.size(), want.size());
    double ss = 0;
    for (float w : want) ss += double(w) * w;
    const double rms = want.empty() ? 0.0 : std::sqrt(ss / double(want.size()));
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], rel * (std::fabs(want[i]) + rms))
          << what << " at " << i << ", seed=" << seed;
  }
  const uint32_t seed = std::random_device{}();
  std::mt19937 rng;
};

TEST_F(EmulatedCudaLaunchers, AttentionForwardBackwardAndDecode) {
  for (auto [T, H, KV, D] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t>{40, 4, 2, 16}, {20, 2, 1, 64}}) {
    const int64_t B = 2, S = (H + 2 * KV) * D;
    const std::vector<float> qkv = normal(size_t(B * T * S)), dout = normal(size_t(B * T * H * D));
    std::vector<int32_t> ds(size_t(B * T));
    for (int64_t i = 0; i < B * T; ++i) ds[size_t(i)] = int32_t(i % T < T / 3 ? 0 : T / 3);
    const AttentionArgs a{B, T, H, KV, D, ds.data()};
    std::vector<float> out(dout.size()), lse(size_t(B * H * T)), dqkv(qkv.size());
    cpu::attention_forward(out.data(), lse.data(), qkv.data(), a);
    cpu::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), a);
    std::vector<float> g_out(out.size(), 7.0f), g_lse(lse.size(), 7.0f), g_dqkv(dqkv.size(), 7.0f);
    std::vector<float> delta(lse.size());
    gpu::attention_forward(g_out.data(), g_lse.data(), qkv.data(), a, nullptr);
    gpu::attention_backward(g_dqkv.data(), delta.data(), dout.data(), out.data(), lse.data(),
                            qkv.data(), a, nullptr);
    const std::string at = " D=" + std::to_string(D);
    expect_close(g_out, out, 1e-5f, "attention out" + at);
    expect_close(g_lse, lse, 1e-5f, "attention lse" + at);
    expect_close(g_dqkv, dqkv, 1e-4f, "attention dqkv" + at);
  }
  const int64_t H = 4, KV = 2, D = 16, cap = 40, S = (H + 2 * KV) * D;
  const std::vector<int32_t> slot = {1, 1, 1, 0}, pos = {0, 1, 2, 39};
  const int64_t M = int64_t(slot.size());
  const std::vector<float> qkv = normal(size_t(M * S));
  std::vector<float> kc = normal(size_t(2 * KV * cap * D)), vc = normal(kc.size());
  std::vector<float> g_kc = kc, g_vc = vc, out(size_t(M * H * D)), g_out(out.size(), 7.0f);
  const AttentionDecodeArgs a{M, H, KV, D, cap, slot.data(), pos.data()};
  cpu::attention_decode(out.data(), qkv.data(), kc.data(), vc.data(), a);
  gpu::attention_decode(g_out.data(), qkv.data(), g_kc.data(), g_vc.data(), a, nullptr);
  expect_close(g_out, out, 1e-5f, "decode");
  EXPECT_EQ(g_kc, kc);
  EXPECT_EQ(g_vc, vc);
}

TEST_F(EmulatedCudaLaunchers, RowKernelsAndReductions) {
  const int64_t M = 6, C = 70, V = 300;
  const std::vector<float> x = normal(size_t(M * C)), w = normal(size_t(C)),
                           dout = normal(size_t(M * C));
  std::vector<float> out(x.size()), rstd(static_cast<size_t>(M)), dx = normal(x.size()),
                                                                  dw = normal(size_t(C));
  std::vector<float> g_out(x.size()), g_rstd(rstd.size()), g_dx = dx, g_dw = dw;
  cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), M, C, 1e-6f);
  cpu::rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rstd.data(), M, C);
  gpu::rmsnorm_forward(g_out.data(), g_rstd.data(), x.data(), w.data(), M, C, 1e-6f, nullptr);
  gpu::rmsnorm_backward(g_dx.data(), g_dw.data(), dout.data(), x.data(), w.data(), rstd.data(), M,
                        C, nullptr);
  expect_close(g_out, out, 1e-6f, "rmsnorm out");
  expect_close(g_dx, dx, 1e-5f, "rmsnorm dx");
  expect_close(g_dw, dw, 1e-5f, "rmsnorm dw");

  std::vector<float> z = normal(size_t(M * V)), g_z = z;
  std::vector<int32_t> t = {3, -100, 299, 0, 17, 150};
  const double want = cpu::softmax_cross_entropy(z.data(), t.data(), M, V, 0.5f);
  std::vector<double> rows(M, -1.0);
  gpu::softmax_cross_entropy(rows.data(), g_z.data(), t.data(), M, V, 0.5f, nullptr);
  double got = 0;
  for (double r : rows) got += r;
  EXPECT_NEAR(got, want, 1e-5 * std::fabs(want)) << "seed=" << seed;
  expect_close(g_z, z, 1e-5f, "cross-entropy");

  for (size_t n : {size_t(0), size_t(5), size_t(9000)}) {
    const std::vector<float> v = normal(n);
    std::vector<double> partial(gpu::sum_squares_scratch(n), -1.0);
    gpu::sum_squares(partial.data(), v.data(), n, nullptr);
    const double ref = cpu::sum_squares(v.data(), n);
    // Both add fp32 sums of up to 4096 squares in fp64, in different orders: each fp32
    // chain (hundreds of terms) drifts by a random walk of roundings, about 2e-6 of the
    // sum at worst seen; 1e-6 failed for about one seed in a few hundred.
    EXPECT_NEAR(partial[0], ref, 1e-5 * ref) << "n=" << n << " seed=" << seed;
  }
}

TEST_F(EmulatedCudaLaunchers, ElementwiseQuantAndOptimizer) {
  const int64_t M = 5, I = 40, heads = 2, D = 8, stride = 20;
  const size_t n = 700;
  std::vector<float> gu = normal(size_t(M * 2 * I)), h(size_t(M * I)), dgu(gu.size());
  gpu::swiglu_forward(h.data(), gu.data(), M, I, nullptr);
  gpu::swiglu_backward(dgu.data(), h.data(), gu.data(), M, I, nullptr);  // dh := h
  for (int64_t m = 0; m < M; ++m)
    for (int64_t i = 0; i < I; ++i) {
      const float g = gu[size_t(m * 2 * I + i)], u = gu[size_t(m * 2 * I + I + i)];
      const float want = g / (1.0f + std::exp(-g)) * u;
      ASSERT_NEAR(h[size_t(m * I + i)], want, 1e-5f * (1 + std::fabs(want)));
    }
  std::vector<float> cs(size_t(10 * D));
  for (size_t i = 0; i < cs.size(); ++i) cs[i] = std::cos(float(i));
  const std::vector<int32_t> pos = {1, 9, 4, 0, 7};
  const std::vector<float> x = normal(size_t(M * stride));
  std::vector<float> y = x;
  gpu::rope_apply(y.data(), pos.data(), cs.data(), M, heads, D, stride, false, nullptr);
  gpu::rope_apply(y.data(), pos.data(), cs.data(), M, heads, D, stride, true, nullptr);
  for (int64_t m = 0; m < M; ++m)  // the extra floats past the heads are untouched
    for (int64_t k = heads * D; k < stride; ++k)
      ASSERT_EQ(y[size_t(m * stride + k)], x[size_t(m * stride + k)]);

  const std::vector<int32_t> ids = {2, 0, 2, 1, 2};
  const std::vector<float> table = normal(size_t(3 * I));
  std::vector<float> e(size_t(M * I)), dt(table.size(), 0.0f);
  gpu::embedding_forward(e.data(), ids.data(), table.data(), M, I, nullptr);
  gpu::embedding_backward(dt.data(), ids.data(), e.data(), M, I, nullptr);
  for (int64_t c = 0; c < I; ++c)
    ASSERT_FLOAT_EQ(dt[size_t(2 * I + c)], 3 * table[size_t(2 * I + c)]);

  std::vector<float> p = normal(n), m(n, 0.0f), v(n, 0.0f), r(n), g = normal(n);
  std::vector<uint16_t> bits(n);
  AdamWArgs aw;
  aw.lr = 1e-2f;
  gpu::adamw_step(p.data(), g.data(), m.data(), v.data(), r.data(), bits.data(), n, aw, nullptr);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(r[i], bf16_to_f32(bits[i]));

  std::vector<uint16_t> packed(n);
  gpu::pack_bf16(packed.data(), p.data(), 7, 100, 100, nullptr);
  std::vector<float> wide(n), deq(n);
  gpu::dequantize_bf16(wide.data(), packed.data(), n, nullptr);
  gpu::round_to_bf16(p.data(), n, nullptr);
  EXPECT_EQ(wide, p);
  std::vector<uint8_t> codes(n / 2, 0x71);  // low nibble 1, high nibble 7
  std::vector<float> absmax(n / 64 + 1, 2.0f);
  gpu::dequantize_nf4(deq.data(), codes.data(), absmax.data(), n, 64, nullptr);
  EXPECT_EQ(deq[0], 2.0f * kNf4Values[1]);
  EXPECT_EQ(deq[1], 0.0f);
  std::vector<uint8_t> q(n, 10);
  const std::vector<float> lo_step = {-1.0f, 0.1f, -2.0f, 0.1f, -3.0f, 0.1f};
  gpu::dequantize_log8(deq.data(), q.data(), lo_step.data(), n, 256, nullptr);
  EXPECT_FLOAT_EQ(deq[0], 1.0f);
  EXPECT_FLOAT_EQ(deq[600], std::exp(-2.0f));
  std::vector<float> ones(n, 1.0f), dropped(n);
  gpu::dropout(dropped.data(), ones.data(), n, 0.5f, 42, false, nullptr);
  size_t kept = 0;
  for (float d : dropped) kept += d == 2.0f;
  EXPECT_GT(kept, n / 4);
  EXPECT_LT(kept, 3 * n / 4);
}

}  // namespace
}  // namespace lathe
