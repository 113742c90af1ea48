#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/fd_check.h"

namespace lathe {
namespace {

using test::all_close;

struct Cfg {
  int64_t H, KV, T, D;
  bool docs;
  int64_t S() const { return (H + 2 * KV) * D; }
  AttentionArgs args(int64_t B, const int32_t* doc_start) const {
    return AttentionArgs{B, T, H, KV, D, docs ? doc_start : nullptr};
  }
};

// Even rows hold three documents, odd rows two. For T = 7 that includes a one-token
// document; for T = 150 documents of 69 and 90 tokens span the kernel's 64-key tile.
std::vector<int32_t> make_doc_start(int64_t B, int64_t T) {
  std::vector<int32_t> ds(B * T);
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int64_t> cuts = b % 2 == 0
                                          ? std::vector<int64_t>{0, T * 27 / 100, T * 73 / 100}
                                          : std::vector<int64_t>{0, T * 60 / 100};
    for (int64_t t = 0; t < T; ++t) {
      int64_t s = 0;
      for (int64_t c : cuts)
        if (c <= t) s = c;
      ds[b * T + t] = int32_t(s);
    }
  }
  return ds;
}

// Full softmax over every key of the row, masked to -inf outside [doc start, query].
void attention_ref(const std::vector<double>& qkv, int64_t B, const Cfg& c, const int32_t* ds,
                   std::vector<double>* out, std::vector<double>* lse) {
  const int64_t T = c.T, H = c.H, KV = c.KV, D = c.D, S = c.S();
  out->assign(B * T * H * D, 0.0);
  if (lse) lse->assign(B * H * T, 0.0);
  std::vector<double> s(T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const int64_t g = h / (H / KV), start = ds ? ds[b * T + i] : 0;
        const double* q = &qkv[(b * T + i) * S + h * D];
        double mx = -std::numeric_limits<double>::infinity(), l = 0;
        for (int64_t j = 0; j < T; ++j) {
          s[j] = -std::numeric_limits<double>::infinity();
          if (j < start || j > i) continue;
          const double* k = &qkv[(b * T + j) * S + (H + g) * D];
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += q[d] * k[d];
          s[j] = dot / std::sqrt(double(D));
          mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j < T; ++j) l += std::exp(s[j] - mx);
        double* o = &(*out)[(b * T + i) * H * D + h * D];
        for (int64_t j = start; j <= i; ++j) {
          const double p = std::exp(s[j] - mx) / l;
          for (int64_t d = 0; d < D; ++d) o[d] += p * qkv[(b * T + j) * S + (H + KV + g) * D + d];
        }
        if (lse) (*lse)[(b * H + h) * T + i] = mx + std::log(l);
      }
}

std::string cfg_name(const Cfg& c) {
  return "H" + std::to_string(c.H) + "KV" + std::to_string(c.KV) + "_T" + std::to_string(c.T) +
         "_D" + std::to_string(c.D) + (c.docs ? "_docs" : "");
}

std::vector<Cfg> all_cfgs() {
  std::vector<Cfg> v;
  for (auto [H, KV] : {std::pair{2, 2}, {4, 2}, {4, 1}})
    for (int64_t T : {7, 150})
      for (int64_t D : {8, 16})
        for (bool docs : {false, true}) v.push_back({H, KV, T, D, docs});
  return v;
}

class Attention : public ::testing::TestWithParam<Cfg> {};

TEST_P(Attention, ForwardMatchesDoubleReference) {
  const Cfg c = GetParam();
  const int64_t B = 2;
  // Scores with a std of ~2, so the softmax is peaked rather than nearly uniform.
  const std::vector<float> qkv = test::normal(B * c.T * c.S(), 11, 1.4f);
  const std::vector<int32_t> ds = make_doc_start(B, c.T);
  std::vector<float> out(B * c.T * c.H * c.D), lse(B * c.H * c.T);
  cpu::attention_forward(out.data(), lse.data(), qkv.data(), c.args(B, ds.data()));

  std::vector<double> want, want_lse;
  attention_ref(test::to_double(qkv), B, c, c.docs ? ds.data() : nullptr, &want, &want_lse);
  // fp32 dot products and an online softmax over <= 150 keys; outputs are averages of
  // O(1) values, so an O(1)-scaled absolute floor covers outputs that cancel to ~0.
  EXPECT_TRUE(all_close(out, want, 1e-5, 2e-6));
  EXPECT_TRUE(all_close(lse, want_lse, 1e-6, 2e-6));
}

TEST_P(Attention, BackwardMatchesFiniteDifferences) {
  const Cfg c = GetParam();
  const int64_t B = 2, n = B * c.T * c.S();
  const std::vector<float> qkv = test::normal(n, 12, 1.4f);
  const std::vector<float> R = test::normal(B * c.T * c.H * c.D, 13);
  const std::vector<int32_t> ds = make_doc_start(B, c.T);
  const AttentionArgs a = c.args(B, ds.data());
  std::vector<float> out(B * c.T * c.H * c.D), lse(B * c.H * c.T);
  cpu::attention_forward(out.data(), lse.data(), qkv.data(), a);
  // NaN everywhere first: the kernel must write every element of dq, dk and dv.
  std::vector<float> dqkv(n, std::numeric_limits<float>::quiet_NaN());
  cpu::attention_backward(dqkv.data(), R.data(), out.data(), lse.data(), qkv.data(), a);

  auto loss = [&](const std::vector<double>& x) {
    std::vector<double> o;
    attention_ref(x, B, c, a.doc_start, &o, nullptr);
    return test::weighted_sum(o, R);
  };
  // Every coordinate for short rows; for T = 150 a sample, plus the random directions
  // below, which see every coordinate at once.
  const auto which = c.T <= 16 ? std::vector<size_t>{} : test::sample_indices(n, 96, 14);
  const auto xd = test::to_double(qkv);
  const auto fd = test::fd_gradient(loss, xd, 1e-5, which);
  // fp32 kernel against an exact gradient: rounding of sums over <= 150 keys.
  EXPECT_TRUE(all_close(dqkv, fd, 1e-4, 1e-5 * test::max_abs(fd), which));

  for (uint32_t seed = 0; seed < 3; ++seed) {
    const std::vector<float> u = test::normal(n, 100 + seed);
    std::vector<double> xp = xd, xm = xd;
    double analytic = 0, magnitude = 0;
    for (int64_t i = 0; i < n; ++i) {
      xp[i] += 1e-5 * u[i];
      xm[i] -= 1e-5 * u[i];
      analytic += double(dqkv[i]) * u[i];
      magnitude += std::fabs(double(dqkv[i]) * u[i]);
    }
    const double directional = (loss(xp) - loss(xm)) / 2e-5;
    // Relative to the sum of |terms|, the scale of the fp32 errors being summed.
    EXPECT_NEAR(analytic, directional, 1e-5 * magnitude) << "direction " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Attention, ::testing::ValuesIn(all_cfgs()),
                         [](const auto& info) { return cfg_name(info.param); });

// Rows [row0, row0 + len) of a row-major tensor `width` floats wide.
std::vector<float> slice_rows(const std::vector<float>& x, int64_t width, int64_t row0,
                              int64_t len) {
  return std::vector<float>(x.begin() + row0 * width, x.begin() + (row0 + len) * width);
}

TEST(AttentionDocs, PackedRowEqualsDocumentsRunAlone) {
  for (auto [H, KV] : {std::pair{2, 2}, {4, 2}, {4, 1}})
    for (int64_t T : {7, 150}) {
      const Cfg c{H, KV, T, 16, true};
      const int64_t B = 2, S = c.S(), O = H * c.D;
      const std::vector<float> qkv = test::normal(B * T * S, 21, 1.4f);
      const std::vector<float> dout = test::normal(B * T * O, 22);
      const std::vector<int32_t> ds = make_doc_start(B, T);
      const AttentionArgs a = c.args(B, ds.data());
      std::vector<float> out(B * T * O), lse(B * H * T), dqkv(B * T * S);
      cpu::attention_forward(out.data(), lse.data(), qkv.data(), a);
      cpu::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), a);

      for (int64_t b = 0; b < B; ++b)
        for (int64_t s = 0; s < T;) {
          int64_t e = s + 1;
          while (e < T && ds[b * T + e] == s) ++e;
          const int64_t len = e - s, r0 = b * T + s;
          SCOPED_TRACE(cfg_name(c) + " row " + std::to_string(b) + " doc [" + std::to_string(s) +
                       "," + std::to_string(e) + ")");
          const AttentionArgs alone{1, len, H, KV, c.D, nullptr};
          const auto q1 = slice_rows(qkv, S, r0, len), d1 = slice_rows(dout, O, r0, len);
          std::vector<float> o1(len * O), l1(H * len), g1(len * S);
          cpu::attention_forward(o1.data(), l1.data(), q1.data(), alone);
          cpu::attention_backward(g1.data(), d1.data(), o1.data(), l1.data(), q1.data(), alone);
          std::vector<float> lse_packed(H * len);
          for (int64_t h = 0; h < H; ++h)
            for (int64_t t = 0; t < len; ++t)
              lse_packed[h * len + t] = lse[(b * H + h) * T + s + t];
          // The same sums, possibly grouped into different key tiles: ulp-level only.
          EXPECT_TRUE(all_close(slice_rows(out, O, r0, len), o1, 1e-6, 1e-6));
          EXPECT_TRUE(all_close(lse_packed, l1, 1e-6, 1e-6));
          EXPECT_TRUE(all_close(slice_rows(dqkv, S, r0, len), g1, 1e-5, 1e-6));
          s = e;
        }
    }
}

TEST(AttentionDocs, KeysOutsideTheDocumentGetNoGradient) {
  const Cfg c{4, 2, 150, 8, true};
  const int64_t B = 1, S = c.S(), O = c.H * c.D;
  const std::vector<int32_t> ds = make_doc_start(B, c.T);  // documents [0,40) [40,109) [109,150)
  const int64_t s = 40, e = 109;
  ASSERT_EQ(ds[s], s);
  ASSERT_EQ(ds[e], e);
  const std::vector<float> qkv = test::normal(B * c.T * S, 31, 1.4f);
  // Upstream gradient only on the middle document's queries.
  std::vector<float> dout = test::normal(B * c.T * O, 32);
  for (int64_t t = 0; t < c.T; ++t)
    if (t < s || t >= e)
      for (int64_t k = 0; k < O; ++k) dout[t * O + k] = 0.0f;
  std::vector<float> out(B * c.T * O), lse(c.H * c.T), dqkv(B * c.T * S);
  const AttentionArgs a = c.args(B, ds.data());
  cpu::attention_forward(out.data(), lse.data(), qkv.data(), a);
  cpu::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), a);
  int64_t inside_nonzero = 0;
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t k = 0; k < S; ++k) {
      if (t >= s && t < e) {
        inside_nonzero += dqkv[t * S + k] != 0.0f;
      } else {
        ASSERT_EQ(dqkv[t * S + k], 0.0f) << "token " << t << " feature " << k;
      }
    }
  EXPECT_GT(inside_nonzero, (e - s) * S / 2);
}

}  // namespace
}  // namespace lathe
