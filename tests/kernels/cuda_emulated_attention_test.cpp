// The CUDA attention kernels (src/kernels/cuda/attention*_kernels.cuh), run on the host
// through tests/kernels/cuda_emulation.h, against the CPU kernels: the tiling, the
// per-document masks, GQA indexing, shared-memory layouts, barriers and warp shuffles are
// checked on every build, without a GPU. Only what the emulation cannot see (timing,
// real memory limits, the launchers' error paths) is left to tests/backend on a GPU.
#include "kernels/cuda_emulation.h"
// The emulation comes first: it stands in for the CUDA runtime in the kernel headers.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_decode.h"
#include "kernels/cuda/attention_decode_kernels.cuh"
#include "kernels/cuda/attention_kernels.cuh"
#include "kernels/fd_check.h"

namespace lathe {
namespace {

namespace ak = cuda::attention_kernels;
namespace dk = cuda::decode_kernels;

uint32_t fresh_seed() { return std::random_device{}(); }

// |got − want| ≤ rel · (|want| + rms(want)): the kernels add in a different order than the
// CPU, nothing else.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, float rel,
                  const std::string& what, uint32_t seed) {
  ASSERT_EQ(got.size(), want.size());
  double ss = 0;
  for (float w : want) ss += double(w) * w;
  const double rms = std::sqrt(ss / double(want.size()));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], rel * (std::fabs(want[i]) + rms))
        << what << " at " << i << ", seed=" << seed;
}

std::vector<int32_t> doc_starts(int64_t B, int64_t T) {  // as the CPU attention test
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

template <int DL>
void run_forward_backward(const AttentionArgs& a, const float* qkv, const float* dout,
                          const float* cpu_out, const float* cpu_lse, float* out, float* lse,
                          float* dqkv) {
  const ak::Geometry g{int(a.T),   int(a.H), int(a.KV), int(a.D), (a.H + 2 * a.KV) * a.D,
                       a.doc_start};
  const unsigned row_blocks = unsigned((a.T + ak::kBlockRows - 1) / ak::kBlockRows);
  emu::launch(dim3(row_blocks, unsigned(a.H), unsigned(a.B)), dim3(ak::kWarps * 32),
              ak::forward_shared_bytes(a.D),
              [&] { ak::attention_forward_kernel<DL>(out, lse, qkv, g); });
  // The backward from the CPU's out and lse, so that it is checked on its own.
  std::vector<float> delta(size_t(a.B * a.H * a.T), -1.0f);
  const int64_t rows = a.B * a.T * a.H;
  emu::launch(dim3(unsigned((rows * 32 + 255) / 256)), dim3(256), 0, [&] {
    ak::attention_delta_kernel(delta.data(), dout, cpu_out, int(a.B), int(a.T), int(a.H), int(a.D));
  });
  emu::launch(dim3(row_blocks, unsigned(a.H), unsigned(a.B)), dim3(ak::kWarps * 32),
              ak::dq_shared_bytes(a.D),
              [&] { ak::attention_dq_kernel<DL>(dqkv, dout, cpu_lse, delta.data(), qkv, g); });
  emu::launch(dim3(unsigned((a.T + cuda::kTile - 1) / cuda::kTile), unsigned(a.KV), unsigned(a.B)),
              dim3(ak::kKvWarps * 32), ak::dkv_shared_bytes(a.D),
              [&] { ak::attention_dkv_kernel<DL>(dqkv, dout, cpu_lse, delta.data(), qkv, g); });
}

struct Cfg {
  int64_t B, T, H, KV, D;
  bool docs;
};

class EmulatedCudaAttention : public ::testing::TestWithParam<Cfg> {};

TEST_P(EmulatedCudaAttention, ForwardAndBackwardMatchCpu) {
  const Cfg c = GetParam();
  const uint32_t seed = fresh_seed();
  const int64_t S = (c.H + 2 * c.KV) * c.D;
  const std::vector<float> qkv = test::normal(size_t(c.B * c.T * S), seed);
  const std::vector<float> dout = test::normal(size_t(c.B * c.T * c.H * c.D), seed + 1);
  const std::vector<int32_t> ds = doc_starts(c.B, c.T);
  const AttentionArgs a{c.B, c.T, c.H, c.KV, c.D, c.docs ? ds.data() : nullptr};
  std::vector<float> out(dout.size()), lse(size_t(c.B * c.H * c.T)), dqkv(qkv.size());
  cpu::attention_forward(out.data(), lse.data(), qkv.data(), a);
  cpu::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), a);
  // Filled with 7: every element must be written.
  std::vector<float> g_out(out.size(), 7.0f), g_lse(lse.size(), 7.0f), g_dqkv(dqkv.size(), 7.0f);
  const int dl = c.D <= 32 ? 1 : c.D <= 64 ? 2 : c.D <= 128 ? 4 : 8;
  auto run = [&](auto tag) {
    run_forward_backward<decltype(tag)::value>(a, qkv.data(), dout.data(), out.data(), lse.data(),
                                               g_out.data(), g_lse.data(), g_dqkv.data());
  };
  if (dl == 1) run(std::integral_constant<int, 1>{});
  if (dl == 2) run(std::integral_constant<int, 2>{});
  if (dl == 4) run(std::integral_constant<int, 4>{});
  expect_close(g_out, out, 1e-5f, "out", seed);
  expect_close(g_lse, lse, 1e-5f, "lse", seed);
  expect_close(g_dqkv, dqkv, 1e-4f, "dqkv", seed);
}

// Short rows, a 150-token row whose documents cross 32-key tiles, GQA 4/2 and 4/1, and
// head sizes of one, two and four floats per lane (D = 16, 48, 96).
INSTANTIATE_TEST_SUITE_P(Shapes, EmulatedCudaAttention,
                         ::testing::Values(Cfg{2, 7, 2, 2, 8, true}, Cfg{2, 70, 4, 2, 16, true},
                                           Cfg{1, 150, 4, 1, 16, true},
                                           Cfg{1, 150, 2, 2, 16, false}, Cfg{1, 45, 2, 1, 48, true},
                                           Cfg{1, 33, 2, 2, 96, false}),
                         [](const auto& info) {
                           const Cfg& c = info.param;
                           return "B" + std::to_string(c.B) + "_T" + std::to_string(c.T) + "_H" +
                                  std::to_string(c.H) + "_KV" + std::to_string(c.KV) + "_D" +
                                  std::to_string(c.D) + (c.docs ? "_docs" : "");
                         });

// Decoding: a 5-token prompt prefilled into slot 2 and single tokens of slots 0 and 3,
// over caches of earlier random keys.
TEST(EmulatedCudaDecode, WritesCacheAndAttendsAsCpu) {
  const uint32_t seed = fresh_seed();
  const int64_t H = 4, KV = 2, D = 16, cap = 70, slots = 4, group = H / KV;
  const std::vector<int32_t> slot = {2, 2, 2, 2, 2, 0, 3}, pos = {0, 1, 2, 3, 4, 69, 40};
  const int64_t M = int64_t(slot.size()), S = (H + 2 * KV) * D;
  const std::vector<float> qkv = test::normal(size_t(M * S), seed);
  std::vector<float> kc = test::normal(size_t(slots * KV * cap * D), seed + 1);
  std::vector<float> vc = test::normal(kc.size(), seed + 2);
  std::vector<float> g_kc = kc, g_vc = vc, out(size_t(M * H * D)), g_out(out.size(), 7.0f);
  const AttentionDecodeArgs a{M, H, KV, D, cap, slot.data(), pos.data()};
  cpu::attention_decode(out.data(), qkv.data(), kc.data(), vc.data(), a);
  emu::launch(dim3(4), dim3(256), 0, [&] {
    dk::cache_write_kernel(g_kc.data(), g_vc.data(), qkv.data(), slot.data(), pos.data(), M, int(H),
                           int(KV), int(D), cap);
  });
  emu::launch(dim3(unsigned(M), unsigned(KV)), dim3(unsigned(group * 32)),
              dk::decode_shared_bytes(group, D), [&] {
                dk::decode_kernel<1>(g_out.data(), qkv.data(), g_kc.data(), g_vc.data(),
                                     slot.data(), pos.data(), int(H), int(KV), int(D), cap);
              });
  expect_close(g_out, out, 1e-5f, "decode out", seed);
  EXPECT_EQ(g_kc, kc);
  EXPECT_EQ(g_vc, vc);
}

}  // namespace
}  // namespace lathe
