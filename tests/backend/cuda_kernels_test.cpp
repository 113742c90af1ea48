// Every per-op kernel of the CUDA backend against the CPU backend (the oracle) on fresh
// random inputs, forward and backward, at the CPU kernel tests' shapes and at real model
// shapes (hidden 2048/4096, vocabularies of 32000 and 128256). Attention and products are
// in cuda_attention_test.cpp. Needs a GPU; skipped with the reason elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cuda_test_util.h"
#include "core/dtype.h"
#include "model/nf4.h"

namespace lathe {
namespace {

class CudaKernels : public test::CudaVsCpu {};

struct Rows {
  int64_t M, C;
};
const std::vector<Rows> kRowShapes = {{1, 8}, {5, 37}, {33, 64}, {256, 2048}, {64, 4096}};

TEST_F(CudaKernels, EmbeddingForwardAndBackwardAccumulate) {
  for (auto [V, M, C] : {std::tuple<int64_t, int64_t, int64_t>{11, 37, 64}, {1000, 512, 2048}}) {
    const std::vector<float> table = normal(size_t(V * C));
    const std::vector<int32_t> ids = ints(size_t(M), 0, int32_t(V));  // repeats: M > V / 2
    const std::vector<float> dout = normal(size_t(M * C));
    std::vector<float> out(size_t(M * C)), dtable = normal(size_t(V * C));
    float* d_out = up(out);
    float* d_dtable = up(dtable);
    gpu->embedding_forward(d_out, up(ids), up(table), M, C);
    gpu->embedding_backward(d_dtable, up(ids), up(dout), M, C);
    cpu->embedding_forward(out.data(), ids.data(), table.data(), M, C);
    cpu->embedding_backward(dtable.data(), ids.data(), dout.data(), M, C);
    expect_close(down(d_out, out.size()), out, 0.0f, "embedding forward");
    expect_close(down(d_dtable, dtable.size()), dtable, 1e-5f, "embedding backward");
  }
}

// Exact copies both ways, at the loss head's shapes (a chunk of rows with targets, hidden
// 2048/4096) and small ones; rows not scattered to keep their values.
TEST_F(CudaKernels, GatherAndScatterRowsAreExact) {
  for (auto [total, n, C] :
       {std::tuple<int64_t, int64_t, int64_t>{37, 5, 64}, {4096, 2048, 2048}, {1024, 1000, 4096}}) {
    std::vector<int32_t> rows(static_cast<size_t>(total));
    for (int64_t i = 0; i < total; ++i)
      rows[size_t(i)] = int32_t((i * 7919) % total);  // distinct: 7919 is prime, not a factor
    rows.resize(size_t(n));
    const std::vector<float> src = normal(size_t(total * C)), dx = normal(size_t(n * C));
    std::vector<float> got(size_t(n * C)), out = normal(size_t(total * C));
    float* d_got = up(got);
    float* d_out = up(out);
    const int32_t* d_rows = up(rows);
    gpu->gather_rows(d_got, up(src), d_rows, n, C);
    gpu->scatter_rows(d_out, up(dx), d_rows, n, C);
    cpu->gather_rows(got.data(), src.data(), rows.data(), n, C);
    cpu->scatter_rows(out.data(), dx.data(), rows.data(), n, C);
    expect_close(down(d_got, got.size()), got, 0.0f, "gather_rows");
    expect_close(down(d_out, out.size()), out, 0.0f, "scatter_rows");
  }
}

TEST_F(CudaKernels, RmsNormForwardAndBackwardAccumulate) {
  for (auto [M, C] : kRowShapes) {
    std::vector<float> x = normal(size_t(M * C));
    for (int64_t m = 0; m < M; ++m)  // rows of different scales, as in the CPU test
      for (int64_t c = 0; c < C; ++c) x[m * C + c] *= std::pow(4.0f, float(m % 5) - 2.0f);
    const std::vector<float> w = uniform(size_t(C), 0.5f, 1.5f), dout = normal(size_t(M * C));
    std::vector<float> out(size_t(M * C)), rstd(static_cast<size_t>(M));
    std::vector<float> dx = normal(size_t(M * C)), dw = normal(size_t(C));
    float *g_out = up(out), *g_rstd = up(rstd), *g_dx = up(dx), *g_dw = up(dw);
    const float *g_x = up(x), *g_w = up(w), *g_dout = up(dout);
    gpu->rmsnorm_forward(g_out, g_rstd, g_x, g_w, M, C, 1e-5f);
    gpu->rmsnorm_backward(g_dx, g_dw, g_dout, g_x, g_w, g_rstd, M, C);
    cpu->rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), M, C, 1e-5f);
    cpu->rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rstd.data(), M, C);
    const std::string at = " M=" + std::to_string(M) + " C=" + std::to_string(C);
    expect_close(down(g_out, out.size()), out, 1e-5f, "rmsnorm out" + at);
    expect_close(down(g_rstd, rstd.size()), rstd, 1e-5f, "rmsnorm rstd" + at);
    expect_close(down(g_dx, dx.size()), dx, 1e-4f, "rmsnorm dx" + at);
    expect_close(down(g_dw, dw.size()), dw, 1e-4f, "rmsnorm dw" + at);
  }
}

std::vector<float> rope_table(int64_t max_pos, int64_t D, double theta) {
  std::vector<float> cs(size_t(max_pos * D));
  for (int64_t p = 0; p < max_pos; ++p)
    for (int64_t i = 0; i < D / 2; ++i) {
      const double a = double(p) * std::pow(theta, -2.0 * double(i) / double(D));
      cs[p * D + i] = float(std::cos(a));
      cs[p * D + D / 2 + i] = float(std::sin(a));
    }
  return cs;
}

TEST_F(CudaKernels, RopeForwardAndInverseWithRowStride) {
  struct Shape {
    int64_t M, heads, D, extra;
  };
  // The CPU test's shapes, then q and k of a Llama-3 8B block (32 + 8 heads of 128 in
  // rows of (32 + 2·8)·128 floats) and of a 1B-style block (heads of 64).
  for (Shape s : {Shape{3, 1, 8, 0}, Shape{9, 3, 16, 0}, Shape{12, 6, 16, 32}, Shape{5, 2, 64, 5},
                  Shape{256, 40, 128, 8 * 128}, Shape{128, 40, 64, 8 * 64}}) {
    const int64_t stride = s.heads * s.D + s.extra, max_pos = 8192;
    const std::vector<float> cs = rope_table(max_pos, s.D, 500000.0);
    const std::vector<int32_t> pos = ints(size_t(s.M), 0, int32_t(max_pos));
    for (bool inverse : {false, true}) {
      std::vector<float> x = normal(size_t(s.M * stride));
      float* g = up(x);
      gpu->rope_forward(g, up(pos), up(cs), s.M, s.heads, s.D, stride, inverse);
      cpu->rope_forward(x.data(), pos.data(), cs.data(), s.M, s.heads, s.D, stride, inverse);
      expect_close(down(g, x.size()), x, 1e-5f,
                   "rope D=" + std::to_string(s.D) + (inverse ? " inverse" : ""));
    }
  }
}

TEST_F(CudaKernels, SwigluForwardAndBackward) {
  for (auto [M, I] : {std::pair<int64_t, int64_t>{5, 37}, {64, 11008}, {32, 14336}}) {
    const std::vector<float> gu = normal(size_t(M * 2 * I), 3.0f), dh = normal(size_t(M * I));
    std::vector<float> h(size_t(M * I)), dgu(size_t(M * 2 * I));
    float *g_h = up(h), *g_dgu = up(dgu);
    const float* g_gu = up(gu);
    gpu->swiglu_forward(g_h, g_gu, M, I);
    gpu->swiglu_backward(g_dgu, up(dh), g_gu, M, I);
    cpu->swiglu_forward(h.data(), gu.data(), M, I);
    cpu->swiglu_backward(dgu.data(), dh.data(), gu.data(), M, I);
    expect_close(down(g_h, h.size()), h, 1e-5f, "swiglu forward I=" + std::to_string(I));
    expect_close(down(g_dgu, dgu.size()), dgu, 1e-5f, "swiglu backward I=" + std::to_string(I));
  }
}

TEST_F(CudaKernels, SoftmaxCrossEntropyGradientInPlaceAndLossSum) {
  struct Case {
    int64_t M, V;
    float scale;
  };
  for (Case c : {Case{1, 1, 1.0f}, Case{3, 7, 1.0f}, Case{9, 50, 0.25f}, Case{16, 1000, -0.5f},
                 Case{64, 32000, 1.0f / 64}, Case{16, 128256, 1.0f / 16}}) {
    std::vector<float> z = normal(size_t(c.M * c.V), 4.0f);
    std::vector<int32_t> t = ints(size_t(c.M), 0, int32_t(c.V));
    for (int64_t m = 3; m < c.M; m += 4) t[size_t(m)] = -100;  // prompt tokens: no loss
    float* g = up(z);
    const double got = gpu->softmax_cross_entropy(g, up(t), c.M, c.V, c.scale);
    const double want = cpu->softmax_cross_entropy(z.data(), t.data(), c.M, c.V, c.scale);
    const std::string at = "M=" + std::to_string(c.M) + " V=" + std::to_string(c.V);
    EXPECT_NEAR(got, want, 1e-5 * (std::fabs(want) + 1.0)) << at << " seed=" << seed;
    expect_close(down(g, z.size()), z, 1e-5f, "cross-entropy gradient " + at);
  }
}

TEST_F(CudaKernels, Bf16RoundingPackingAndAddAreExact) {
  std::vector<float> x = normal(100003, 10.0f);
  const std::vector<uint32_t> special = {0x3f808000u, 0x3f818000u, 0x7f800001u, 0x7f7fffffu,
                                         0x00000001u};
  for (size_t i = 0; i < special.size(); ++i) std::memcpy(&x[i], &special[i], 4);
  std::vector<float> r = x;
  float* g = up(r);
  gpu->round_to_bf16(g, r.size());
  cpu->round_to_bf16(r.data(), r.size());
  const std::vector<float> got = down(g, r.size());
  for (size_t i = 0; i < r.size(); ++i)
    ASSERT_EQ(std::memcmp(&got[i], &r[i], 4), 0) << "round_to_bf16 at " << i << " seed=" << seed;

  const int64_t rows = 300, cols = 517, ld = 600;  // a view with a row stride
  const std::vector<float> m = normal(size_t(rows * ld));
  std::vector<uint16_t> bits(size_t(rows * cols));
  uint16_t* gb = up(bits);
  gpu->pack_bf16(gb, up(m), rows, cols, ld);
  cpu->pack_bf16(bits.data(), m.data(), rows, cols, ld);
  EXPECT_EQ(down(gb, bits.size()), bits) << "pack_bf16, seed=" << seed;

  std::vector<float> y = normal(x.size()), dx = normal(x.size());
  float* gy = up(y);
  gpu->add(gy, up(dx), y.size());
  cpu->add(y.data(), dx.data(), y.size());
  expect_close(down(gy, y.size()), y, 0.0f, "add");
}

TEST_F(CudaKernels, SumSquaresMatchesAndRepeatsBitForBit) {
  for (size_t n : {size_t(1), size_t(4095), size_t(4097), size_t(100003), size_t(1) << 24}) {
    const std::vector<float> x = normal(n, 0.02f);
    const float* g = up(x);
    const double got = gpu->sum_squares(g, n), want = cpu->sum_squares(x.data(), n);
    EXPECT_NEAR(got, want, 1e-5 * want) << "n=" << n << " seed=" << seed;
    EXPECT_EQ(gpu->sum_squares(g, n), got) << "n=" << n << ": not deterministic";
  }
}

TEST_F(CudaKernels, DequantizationMatchesCpu) {
  const size_t n = 4096 * 64 + 13;
  std::vector<uint16_t> b16(n);
  for (auto& v : b16) v = f32_to_bf16(normal(1)[0]);
  std::vector<uint8_t> codes((n + 1) / 2), q(n);
  for (auto& c : codes) c = uint8_t(ints(1, 0, 256)[0]);
  for (auto& c : q) c = uint8_t(ints(1, 0, 256)[0]);
  const std::vector<float> absmax = uniform((n + kNf4Block - 1) / kNf4Block, 0.01f, 1.0f);
  std::vector<float> lo_step;
  for (size_t g = 0; g < (n + kScaleGroup - 1) / kScaleGroup; ++g) {
    lo_step.push_back(uniform(1, -9.0f, -4.0f)[0]);
    lo_step.push_back(uniform(1, 0.01f, 0.05f)[0]);
  }
  std::vector<float> want(n), got_d(n);
  float* g = up(got_d);
  gpu->dequantize_bf16(g, up(b16), n);
  cpu->dequantize_bf16(want.data(), b16.data(), n);
  expect_close(down(g, n), want, 0.0f, "dequantize_bf16");
  gpu->dequantize_nf4(g, up(codes), up(absmax), n, kNf4Block);
  cpu->dequantize_nf4(want.data(), codes.data(), absmax.data(), n, kNf4Block);
  expect_close(down(g, n), want, 0.0f, "dequantize_nf4");
  gpu->dequantize_log8(g, up(q), up(lo_step), n, kScaleGroup);
  cpu->dequantize_log8(want.data(), q.data(), lo_step.data(), n, kScaleGroup);
  expect_close(down(g, n), want, 1e-6f, "dequantize_log8");
}

TEST_F(CudaKernels, DropoutDrawsTheCpuMask) {
  const size_t n = 1000003;
  const std::vector<float> in = normal(n);
  for (float p : {0.05f, 0.1f}) {
    const uint64_t s = (uint64_t(rng()) << 32) | rng();
    for (bool accumulate : {false, true}) {
      std::vector<float> out = normal(n);
      float* g = up(out);
      gpu->dropout(g, up(in), n, p, s, accumulate);
      cpu->dropout(out.data(), in.data(), n, p, s, accumulate);
      // Bit-exact without accumulation; with it, the CPU's vectorized clone may fuse the
      // add into an fma (an ulp), while a different mask would be off by O(1).
      expect_close(down(g, n), out, accumulate ? 1e-6f : 0.0f,
                   accumulate ? "dropout +=" : "dropout");
    }
  }
}

TEST_F(CudaKernels, AdamwStepWithBf16Copies) {
  const size_t n = 1000003;
  std::vector<float> p = normal(n, 0.02f), m(n, 0.0f), v(n, 0.0f), r(n);
  std::vector<uint16_t> bits(n);
  float *gp = up(p), *gm = up(m), *gv = up(v), *gr = up(r);
  uint16_t* gb = up(bits);
  AdamWArgs a;
  a.lr = 1e-3f, a.weight_decay = 0.1f, a.grad_scale = 0.5f;
  for (int64_t step = 1; step <= 3; ++step) {
    a.step = step;
    const std::vector<float> g = normal(n, 0.01f);
    const float* gg = up(g);
    // Step 2 without the copies: the optional outputs are independent.
    gpu->adamw_step(gp, gg, gm, gv, step == 2 ? nullptr : gr, step == 2 ? nullptr : gb, n, a);
    cpu->adamw_step(p.data(), g.data(), m.data(), v.data(), step == 2 ? nullptr : r.data(),
                    step == 2 ? nullptr : bits.data(), n, a);
  }
  expect_close(down(gp, n), p, 1e-5f, "adamw p");
  expect_close(down(gm, n), m, 1e-5f, "adamw m");
  expect_close(down(gv, n), v, 1e-5f, "adamw v");
  const std::vector<uint16_t> got_bits = down(gb, n);
  const std::vector<float> got_r = down(gr, n);
  for (size_t i = 0; i < n; ++i) {
    // p equal to an ulp may round to the neighbouring bf16 at a tie.
    ASSERT_LE(std::abs(int(got_bits[i]) - int(bits[i])), 1) << i << " seed=" << seed;
    ASSERT_EQ(got_r[i], bf16_to_f32(got_bits[i])) << i;
  }
}

}  // namespace
}  // namespace lathe
