#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/hot.h"

namespace lathe::cpu {
namespace {

constexpr int64_t kKeyTile = 64;

inline float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float* __restrict y, float a, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

LATHE_HOT void attention_forward(float* out, float* lse, const float* qkv, const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H, KV = a.KV, D = a.D;
  const int64_t S = (H + 2 * KV) * D, group = H / KV;
  const float scale = 1.0f / std::sqrt(float(D));
#pragma omp parallel
  {
    std::vector<float> acc(D), s(kKeyTile);
#pragma omp for collapse(3) schedule(dynamic, 16)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < T; ++i) {
          const int64_t g = h / group;
          const float* q = qkv + (b * T + i) * S + h * D;
          const int64_t j_begin = a.doc_start ? a.doc_start[b * T + i] : 0;
          float m = -std::numeric_limits<float>::infinity(), l = 0;
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t j0 = j_begin; j0 <= i; j0 += kKeyTile) {
            const int64_t n = std::min(kKeyTile, i + 1 - j0);
            float tile_max = m;
            for (int64_t j = 0; j < n; ++j) {
              const float* k = qkv + (b * T + j0 + j) * S + (H + g) * D;
              s[j] = dot(q, k, D) * scale;
              tile_max = std::max(tile_max, s[j]);
            }
            // Rescale what was summed so far to the new maximum (online softmax).
            const float corr = std::exp(m - tile_max);
            l *= corr;
            for (int64_t d = 0; d < D; ++d) acc[d] *= corr;
            for (int64_t j = 0; j < n; ++j) {
              const float p = std::exp(s[j] - tile_max);
              l += p;
              axpy(acc.data(), p, qkv + (b * T + j0 + j) * S + (H + KV + g) * D, D);
            }
            m = tile_max;
          }
          float* o = out + (b * T + i) * H * D + h * D;
          const float inv = 1.0f / l;
          for (int64_t d = 0; d < D; ++d) o[d] = acc[d] * inv;
          lse[(b * H + h) * T + i] = m + std::log(l);
        }
  }
}

LATHE_HOT void attention_backward(float* dqkv, const float* dout, const float* out,
                                  const float* lse, const float* qkv, const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H, KV = a.KV, D = a.D;
  const int64_t S = (H + 2 * KV) * D, group = H / KV;
  const float scale = 1.0f / std::sqrt(float(D));
#pragma omp parallel
  {
    std::vector<float> delta(T), p(kKeyTile), ds(kKeyTile);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < KV; ++g) {
        // This task owns dk, dv of head g and dq of the query heads that read it.
        for (int64_t t = 0; t < T; ++t) {
          float* row = dqkv + (b * T + t) * S;
          std::memset(row + (H + g) * D, 0, D * sizeof(float));
          std::memset(row + (H + KV + g) * D, 0, D * sizeof(float));
          for (int64_t h = g * group; h < (g + 1) * group; ++h)
            std::memset(row + h * D, 0, D * sizeof(float));
        }
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          // delta_i = dO_i · O_i, the softmax backward's row term.
          for (int64_t i = 0; i < T; ++i) {
            const int64_t off = (b * T + i) * H * D + h * D;
            delta[i] = dot(dout + off, out + off, D);
          }
          for (int64_t i = 0; i < T; ++i) {
            const float* q = qkv + (b * T + i) * S + h * D;
            const float* dO = dout + (b * T + i) * H * D + h * D;
            float* dq = dqkv + (b * T + i) * S + h * D;
            const float row_lse = lse[(b * H + h) * T + i];
            const int64_t j_begin = a.doc_start ? a.doc_start[b * T + i] : 0;
            for (int64_t j0 = j_begin; j0 <= i; j0 += kKeyTile) {
              const int64_t n = std::min(kKeyTile, i + 1 - j0);
              for (int64_t j = 0; j < n; ++j) {
                const float* kv_row = qkv + (b * T + j0 + j) * S;
                p[j] = std::exp(dot(q, kv_row + (H + g) * D, D) * scale - row_lse);
                const float dp = dot(dO, kv_row + (H + KV + g) * D, D);
                ds[j] = p[j] * (dp - delta[i]) * scale;
              }
              for (int64_t j = 0; j < n; ++j) {
                const float* kv_row = qkv + (b * T + j0 + j) * S;
                float* dkv_row = dqkv + (b * T + j0 + j) * S;
                axpy(dkv_row + (H + KV + g) * D, p[j], dO, D);
                axpy(dq, ds[j], kv_row + (H + g) * D, D);
                axpy(dkv_row + (H + g) * D, ds[j], q, D);
              }
            }
          }
        }
      }
  }
}

}  // namespace lathe::cpu
