#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/hot.h"
#include "kernels/cpu/vec_math.h"

namespace lathe::cpu {
namespace {

// Work is one query row at a time against all the keys it may see: the score row (at
// most T floats per thread) is the only score storage, never T×T. Keys and values are
// first transposed to [D, T] per (row, KV head) so that every inner loop runs over
// contiguous keys and vectorizes for any head size (stories260K has D = 8).
struct Transposed {
  std::vector<float> kT, vT;  // [B, KV, D, T]
};

Transposed transpose_kv(const float* qkv, const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H, KV = a.KV, D = a.D, S = (H + 2 * KV) * D;
  Transposed t;
  t.kT.resize(size_t(B * KV * D * T));
  t.vT.resize(size_t(B * KV * D * T));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < KV; ++g) {
      float* kt = t.kT.data() + (b * KV + g) * D * T;
      float* vt = t.vT.data() + (b * KV + g) * D * T;
      for (int64_t j = 0; j < T; ++j) {
        const float* row = qkv + (b * T + j) * S;
        for (int64_t d = 0; d < D; ++d) {
          kt[d * T + j] = row[(H + g) * D + d];
          vt[d * T + j] = row[(H + KV + g) * D + d];
        }
      }
    }
  return t;
}

// s[0:n] = scale · Σ_d q[d] · kT[d, j0 : j0+n]
LATHE_HOT void scores(float* __restrict s, const float* __restrict q, const float* __restrict kT,
                      int64_t T, int64_t D, int64_t j0, int64_t n, float scale) {
  for (int64_t j = 0; j < n; ++j) s[j] = 0.0f;
  for (int64_t d = 0; d < D; ++d) {
    const float qd = q[d] * scale;
    const float* k = kT + d * T + j0;
    for (int64_t j = 0; j < n; ++j) s[j] += qd * k[j];
  }
}

LATHE_HOT float row_dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float s = 0;
  // Float sums only vectorize when the order may change; it is fixed per binary, so
  // results stay reproducible run to run.
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += a[j] * b[j];
  return s;
}

// p[j] = exp(s[j] - m) and returns Σ p.
LATHE_HOT float exp_and_sum(float* __restrict p, const float* __restrict s, float m, int64_t n) {
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    p[j] = exp_vec(s[j] - m);
    sum += p[j];
  }
  return sum;
}

LATHE_HOT void axpy(float* __restrict y, float a, const float* __restrict x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] += a * x[j];
}

}  // namespace

void attention_forward(float* out, float* lse, const float* qkv, const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H, KV = a.KV, D = a.D;
  const int64_t S = (H + 2 * KV) * D, group = H / KV;
  const float scale = 1.0f / std::sqrt(float(D));
  const Transposed t = transpose_kv(qkv, a);
#pragma omp parallel
  {
    std::vector<float> s(static_cast<size_t>(T)), p(static_cast<size_t>(T));
#pragma omp for collapse(3) schedule(dynamic, 16)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < T; ++i) {
          const int64_t g = h / group;
          const float* kT = t.kT.data() + (b * KV + g) * D * T;
          const float* vT = t.vT.data() + (b * KV + g) * D * T;
          const float* q = qkv + (b * T + i) * S + h * D;
          const int64_t j0 = a.doc_start ? a.doc_start[b * T + i] : 0;
          const int64_t n = i + 1 - j0;  // keys j0..i: causal, within the document
          scores(s.data(), q, kT, T, D, j0, n, scale);
          float m = s[0];
#pragma omp simd reduction(max : m)
          for (int64_t j = 1; j < n; ++j) m = std::max(m, s[j]);
          const float sum = exp_and_sum(p.data(), s.data(), m, n);
          const float inv = 1.0f / sum;
          float* o = out + (b * T + i) * H * D + h * D;
          for (int64_t d = 0; d < D; ++d) o[d] = row_dot(p.data(), vT + d * T + j0, n) * inv;
          lse[(b * H + h) * T + i] = m + std::log(sum);
        }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H, KV = a.KV, D = a.D;
  const int64_t S = (H + 2 * KV) * D, group = H / KV;
  const float scale = 1.0f / std::sqrt(float(D));
  const Transposed t = transpose_kv(qkv, a);
#pragma omp parallel
  {
    std::vector<float> s(static_cast<size_t>(T)), p(static_cast<size_t>(T)), ds(static_cast<size_t>(T));
    std::vector<float> dkT(static_cast<size_t>(D * T)), dvT(static_cast<size_t>(D * T));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < KV; ++g) {
        // This task owns dk, dv of KV head g and dq of the query heads that read it, so
        // no two threads write the same value and results do not depend on scheduling.
        const float* kT = t.kT.data() + (b * KV + g) * D * T;
        const float* vT = t.vT.data() + (b * KV + g) * D * T;
        std::fill(dkT.begin(), dkT.end(), 0.0f);
        std::fill(dvT.begin(), dvT.end(), 0.0f);
        for (int64_t h = g * group; h < (g + 1) * group; ++h)
          for (int64_t i = 0; i < T; ++i) {
            const float* q = qkv + (b * T + i) * S + h * D;
            const float* dO = dout + (b * T + i) * H * D + h * D;
            const float* o = out + (b * T + i) * H * D + h * D;
            float* dq = dqkv + (b * T + i) * S + h * D;
            const int64_t j0 = a.doc_start ? a.doc_start[b * T + i] : 0;
            const int64_t n = i + 1 - j0;
            // P from the saved log-sum-exp; delta = dO·O is the softmax backward's row term.
            scores(s.data(), q, kT, T, D, j0, n, scale);
            const float row_lse = lse[(b * H + h) * T + i];
            exp_and_sum(p.data(), s.data(), row_lse, n);
            const float delta = row_dot(dO, o, D);
            // dP[j] = dO · v_j, then dS = P ∘ (dP − delta), scaled for the q·k product.
            scores(ds.data(), dO, vT, T, D, j0, n, 1.0f);
            for (int64_t j = 0; j < n; ++j) ds[j] = p[j] * (ds[j] - delta) * scale;
            for (int64_t d = 0; d < D; ++d) {
              dq[d] = row_dot(ds.data(), kT + d * T + j0, n);
              axpy(dkT.data() + d * T + j0, q[d], ds.data(), n);
              axpy(dvT.data() + d * T + j0, dO[d], p.data(), n);
            }
          }
        for (int64_t j = 0; j < T; ++j) {
          float* row = dqkv + (b * T + j) * S;
          for (int64_t d = 0; d < D; ++d) {
            row[(H + g) * D + d] = dkT[d * T + j];
            row[(H + KV + g) * D + d] = dvT[d * T + j];
          }
        }
      }
  }
}

}  // namespace lathe::cpu
