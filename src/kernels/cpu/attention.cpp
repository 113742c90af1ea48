#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/isa_namespace.h"
#include "kernels/cpu/vec_math.h"

namespace lathe::cpu::LATHE_KERNEL_NS {
namespace {

// Work goes R query rows at a time (same row of the batch, same head) against all the
// keys they may see: the R score rows (R·T floats per thread) are the only score
// storage, never T×T. Keys and values are first transposed to [D, T + pad] per (row,
// KV head), so inner loops run over 16 contiguous keys and each loaded key vector
// serves R queries from registers; this vectorizes for any head size (stories260K has
// D = 8) and made attention 2× faster than one row at a time.
constexpr int64_t kRows = 4;
constexpr int64_t kLanes = 16;

struct Transposed {
  int64_t ld;                 // T rounded up to kLanes, so vector loads never leave a row
  std::vector<float> kT, vT;  // [B, KV, D, ld]
};

Transposed transpose_kv(const float* qkv, const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H, KV = a.KV, D = a.D, S = (H + 2 * KV) * D;
  Transposed t;
  t.ld = (T + kLanes - 1) / kLanes * kLanes;
  // kLanes of slack: a block whose keys start at jlo > 0 (packed documents) reads and
  // writes up to kLanes - 1 lanes past its last row; those lanes always carry p = 0.
  t.kT.assign(size_t(B * KV * D * t.ld + kLanes), 0.0f);
  t.vT.assign(size_t(B * KV * D * t.ld + kLanes), 0.0f);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < KV; ++g) {
      float* kt = t.kT.data() + (b * KV + g) * D * t.ld;
      float* vt = t.vT.data() + (b * KV + g) * D * t.ld;
      for (int64_t j = 0; j < T; ++j) {
        const float* row = qkv + (b * T + j) * S;
        for (int64_t d = 0; d < D; ++d) {
          kt[d * t.ld + j] = row[(H + g) * D + d];
          vt[d * t.ld + j] = row[(H + KV + g) * D + d];
        }
      }
    }
  return t;
}

// One native vector of floats as one value: 16 (a zmm) with AVX-512, 8 (a ymm) with AVX2,
// 4 (an xmm) in the baseline build. GCC keeps these in registers, where plain float[R][16]
// accumulators were spilled to the stack on every step. The accumulator blocks below are
// sized to the register file: AVX-512's 32 zmm hold probs_times_values' 4 rows × 4 head
// dims; AVX2 and SSE have 16 registers, so 4 rows × 2 dims. (With 16-float values on
// AVX2, two ymm each, 130 of that loop's 182 vector instructions touched the stack.)
#if defined(__AVX512F__)
constexpr int64_t kVec = 16, kDims = 4;
#elif defined(__AVX2__)
constexpr int64_t kVec = 8, kDims = 2;
#else
constexpr int64_t kVec = 4, kDims = 2;
#endif
static_assert(kLanes % kVec == 0, "rows are padded to whole vectors");
typedef float vec __attribute__((vector_size(kVec * sizeof(float))));
// The helpers below are inlined into their callers; no vector crosses a call boundary, so
// GCC's note about the AVX-512 calling convention does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

// Unaligned loads and stores the way the intrinsics headers write _mm256_loadu_ps: through
// a 4-byte-aligned, may_alias vector type. (memcpy into a local went through the stack.)
typedef float vec_unaligned
    __attribute__((vector_size(kVec * sizeof(float)), aligned(4), may_alias));
inline vec loadv(const float* p) { return *reinterpret_cast<const vec_unaligned*>(p); }
inline void storev(float* p, vec v) { *reinterpret_cast<vec_unaligned*>(p) = v; }
inline float sumv(vec v) {
  float s = 0;
  for (int l = 0; l < kVec; ++l) s += v[l];
  return s;
}

// out[r][j] = scale · Σ_d x[r][d] · yT[d][j] for j in [0, n); out rows are ld_out apart
// and must have room for n rounded up to kLanes.
template <int64_t R>
void rows_times_keys(float* __restrict out, int64_t ld_out, const float* const* x,
                     const float* __restrict yT, int64_t ld, int64_t D, int64_t n, float scale) {
  for (int64_t j0 = 0; j0 < n; j0 += kVec) {
    vec acc[R];
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r) acc[r] = vec{};
    for (int64_t d = 0; d < D; ++d) {
      const vec y = loadv(yT + d * ld + j0);
#pragma GCC unroll 8
      for (int64_t r = 0; r < R; ++r) acc[r] += x[r][d] * y;
    }
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r) storev(out + r * ld_out + j0, acc[r] * scale);
  }
}

// out[r][d] = Σ_j p[r][j] · yT[d][j] for j in [0, n) (p is zero past each row's keys).
// kDims head dims at a time: each loaded p vector then serves kDims products (the loop is
// bound by loads, not arithmetic).
template <int64_t R>
void probs_times_values(float* const* out, const float* __restrict p, int64_t ld_p,
                        const float* __restrict yT, int64_t ld, int64_t D, int64_t n) {
  int64_t d = 0;
  for (; d + kDims <= D; d += kDims) {
    vec acc[R][kDims];
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int k = 0; k < kDims; ++k) acc[r][k] = vec{};
    for (int64_t j0 = 0; j0 < n; j0 += kVec) {
      vec y[kDims];
#pragma GCC unroll 4
      for (int k = 0; k < kDims; ++k) y[k] = loadv(yT + (d + k) * ld + j0);
#pragma GCC unroll 8
      for (int64_t r = 0; r < R; ++r) {
        const vec pv = loadv(p + r * ld_p + j0);
#pragma GCC unroll 4
        for (int k = 0; k < kDims; ++k) acc[r][k] += pv * y[k];
      }
    }
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int k = 0; k < kDims; ++k) out[r][d + k] = sumv(acc[r][k]);
  }
  for (; d < D; ++d) {
    const float* y = yT + d * ld;
    vec acc[R];
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r) acc[r] = vec{};
    for (int64_t j0 = 0; j0 < n; j0 += kVec) {
      const vec yv = loadv(y + j0);
#pragma GCC unroll 8
      for (int64_t r = 0; r < R; ++r) acc[r] += loadv(p + r * ld_p + j0) * yv;
    }
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r) out[r][d] = sumv(acc[r]);
  }
}

// yT[d][j] += Σ_r x[r][d] · p[r][j] for j in [0, n): the dk and dv accumulations, kDims
// head dims at a time so each loaded p vector serves kDims rows of yT.
template <int64_t R>
void accumulate_outer(float* __restrict yT, int64_t ld, const float* const* x,
                      const float* __restrict p, int64_t ld_p, int64_t D, int64_t n) {
  int64_t d = 0;
  for (; d + kDims <= D; d += kDims) {
    float xv[R][kDims];
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int k = 0; k < kDims; ++k) xv[r][k] = x[r][d + k];
    for (int64_t j0 = 0; j0 < n; j0 += kVec) {
      vec y[kDims];
#pragma GCC unroll 4
      for (int k = 0; k < kDims; ++k) y[k] = loadv(yT + (d + k) * ld + j0);
#pragma GCC unroll 8
      for (int64_t r = 0; r < R; ++r) {
        const vec pv = loadv(p + r * ld_p + j0);
#pragma GCC unroll 4
        for (int k = 0; k < kDims; ++k) y[k] += xv[r][k] * pv;
      }
#pragma GCC unroll 4
      for (int k = 0; k < kDims; ++k) storev(yT + (d + k) * ld + j0, y[k]);
    }
  }
  for (; d < D; ++d) {
    float* y = yT + d * ld;
    float xv[R];
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r) xv[r] = x[r][d];
    for (int64_t j0 = 0; j0 < n; j0 += kVec) {
      vec s = loadv(y + j0);
#pragma GCC unroll 8
      for (int64_t r = 0; r < R; ++r) s += xv[r] * loadv(p + r * ld_p + j0);
      storev(y + j0, s);
    }
  }
}

// Row r of the block may see keys [lo[r], hi[r]) of the block's range; p = exp(s - m)
// there (m = the row max, or the saved log-sum-exp), exactly zero elsewhere.
// Returns the row sums in sum[r].
void masked_exp(float* __restrict p, const float* __restrict s, int64_t ld, int64_t R,
                const int64_t* lo, const int64_t* hi, int64_t n_padded, const float* m,
                float* sum) {
  for (int64_t r = 0; r < R; ++r) {
    float* pr = p + r * ld;
    const float* sr = s + r * ld;
    float total = 0;
    for (int64_t j = 0; j < lo[r]; ++j) pr[j] = 0.0f;
#pragma omp simd reduction(+ : total)
    for (int64_t j = lo[r]; j < hi[r]; ++j) {
      pr[j] = exp_vec(sr[j] - m[r]);
      total += pr[j];
    }
    for (int64_t j = hi[r]; j < n_padded; ++j) pr[j] = 0.0f;
    sum[r] = total;
  }
}

float row_max(const float* s, int64_t lo, int64_t hi) {
  float m = s[lo];
#pragma omp simd reduction(max : m)
  for (int64_t j = lo + 1; j < hi; ++j) m = std::max(m, s[j]);
  return m;
}

// The geometry of one block of query rows i0 .. i0+R-1 in row b of the batch.
struct Block {
  int64_t R, jlo, n, n_padded;
  int64_t lo[kRows], hi[kRows];
};

Block make_block(const AttentionArgs& a, int64_t b, int64_t i0, int64_t R) {
  Block k{};
  k.R = R;
  k.jlo = i0;
  for (int64_t r = 0; r < R; ++r)
    k.jlo = std::min<int64_t>(k.jlo, a.doc_start ? a.doc_start[b * a.T + i0 + r] : 0);
  k.n = i0 + R - k.jlo;  // keys jlo .. i0+R-1
  k.n_padded = (k.n + kLanes - 1) / kLanes * kLanes;
  for (int64_t r = 0; r < R; ++r) {
    const int64_t start = a.doc_start ? a.doc_start[b * a.T + i0 + r] : 0;
    k.lo[r] = start - k.jlo;  // causal and within the document
    k.hi[r] = i0 + r + 1 - k.jlo;
  }
  return k;
}

template <int64_t R>
void forward_block(float* out, float* lse, const float* qkv, const Transposed& t,
                   const AttentionArgs& a, int64_t b, int64_t h, int64_t i0, float* s, float* p) {
  const int64_t T = a.T, H = a.H, KV = a.KV, D = a.D, S = (H + 2 * KV) * D;
  const int64_t g = h / (H / KV);
  const Block k = make_block(a, b, i0, R);
  const float* kT = t.kT.data() + (b * KV + g) * D * t.ld + k.jlo;
  const float* vT = t.vT.data() + (b * KV + g) * D * t.ld + k.jlo;
  const float* q[R];
  float* o[R];
  for (int64_t r = 0; r < R; ++r) {
    q[r] = qkv + (b * T + i0 + r) * S + h * D;
    o[r] = out + (b * T + i0 + r) * H * D + h * D;
  }
  const int64_t ld = t.ld;
  rows_times_keys<R>(s, ld, q, kT, t.ld, D, k.n, 1.0f / std::sqrt(float(D)));
  float m[kRows], sum[kRows];
  for (int64_t r = 0; r < R; ++r) m[r] = row_max(s + r * ld, k.lo[r], k.hi[r]);
  masked_exp(p, s, ld, R, k.lo, k.hi, k.n_padded, m, sum);
  probs_times_values<R>(o, p, ld, vT, t.ld, D, k.n);
  for (int64_t r = 0; r < R; ++r) {
    const float inv = 1.0f / sum[r];
    for (int64_t d = 0; d < D; ++d) o[r][d] *= inv;
    lse[(b * H + h) * T + i0 + r] = m[r] + std::log(sum[r]);
  }
}

template <int64_t R>
void backward_block(float* dqkv, const float* dout, const float* out, const float* lse,
                    const float* qkv, const Transposed& t, const AttentionArgs& a, int64_t b,
                    int64_t h, int64_t i0, float* s, float* p, float* dkT, float* dvT) {
  const int64_t T = a.T, H = a.H, KV = a.KV, D = a.D, S = (H + 2 * KV) * D;
  const int64_t g = h / (H / KV);
  const float scale = 1.0f / std::sqrt(float(D));
  const Block k = make_block(a, b, i0, R);
  const float* kT = t.kT.data() + (b * KV + g) * D * t.ld + k.jlo;
  const float* vT = t.vT.data() + (b * KV + g) * D * t.ld + k.jlo;
  const int64_t ld = t.ld;
  const float* q[R];
  const float* dO[R];
  float* dq[R];
  float m[kRows], sum[kRows], delta[kRows];
  for (int64_t r = 0; r < R; ++r) {
    const int64_t row = b * T + i0 + r;
    q[r] = qkv + row * S + h * D;
    dO[r] = dout + row * H * D + h * D;
    dq[r] = dqkv + row * S + h * D;
    m[r] = lse[(b * H + h) * T + i0 + r];
    delta[r] = 0;  // dO·O, the softmax backward's row term
    for (int64_t d = 0; d < D; ++d) delta[r] += dO[r][d] * out[row * H * D + h * D + d];
  }
  // P from the saved log-sum-exp; dP = dO·Vᵀ; dS = P ∘ (dP − delta), scaled for q·k.
  rows_times_keys<R>(s, ld, q, kT, t.ld, D, k.n, scale);
  masked_exp(p, s, ld, R, k.lo, k.hi, k.n_padded, m, sum);
  rows_times_keys<R>(s, ld, dO, vT, t.ld, D, k.n, 1.0f);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < k.n_padded; ++j)
      s[r * ld + j] = p[r * ld + j] * (s[r * ld + j] - delta[r]) * scale;
  probs_times_values<R>(dq, s, ld, kT, t.ld, D, k.n);
  accumulate_outer<R>(dkT + k.jlo, t.ld, q, s, ld, D, k.n);
  accumulate_outer<R>(dvT + k.jlo, t.ld, dO, p, ld, D, k.n);
}

}  // namespace

void attention_forward(float* out, float* lse, const float* qkv, const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H;
  const Transposed t = transpose_kv(qkv, a);
  const int64_t blocks = (T + kRows - 1) / kRows;
#pragma omp parallel
  {
    std::vector<float> s(size_t(kRows * t.ld)), p(size_t(kRows * t.ld));
#pragma omp for collapse(3) schedule(dynamic, 4)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t i0 = blk * kRows;
          if (i0 + kRows <= T)
            forward_block<kRows>(out, lse, qkv, t, a, b, h, i0, s.data(), p.data());
          else
            for (int64_t i = i0; i < T; ++i)
              forward_block<1>(out, lse, qkv, t, a, b, h, i, s.data(), p.data());
        }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, const AttentionArgs& a) {
  const int64_t B = a.B, T = a.T, H = a.H, KV = a.KV, D = a.D;
  const int64_t S = (H + 2 * KV) * D, group = H / KV;
  const Transposed t = transpose_kv(qkv, a);
#pragma omp parallel
  {
    std::vector<float> s(size_t(kRows * t.ld)), p(size_t(kRows * t.ld));
    std::vector<float> dkT(size_t(D * t.ld + kLanes)), dvT(size_t(D * t.ld + kLanes));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < KV; ++g) {
        // This task owns dk, dv of KV head g and dq of the query heads that read it, so
        // no two threads write the same value and results do not depend on scheduling.
        std::fill(dkT.begin(), dkT.end(), 0.0f);
        std::fill(dvT.begin(), dvT.end(), 0.0f);
        for (int64_t h = g * group; h < (g + 1) * group; ++h)
          for (int64_t i0 = 0; i0 < T; i0 += kRows) {
            if (i0 + kRows <= T)
              backward_block<kRows>(dqkv, dout, out, lse, qkv, t, a, b, h, i0, s.data(), p.data(),
                                    dkT.data(), dvT.data());
            else
              for (int64_t i = i0; i < T; ++i)
                backward_block<1>(dqkv, dout, out, lse, qkv, t, a, b, h, i, s.data(), p.data(),
                                  dkT.data(), dvT.data());
          }
        for (int64_t j = 0; j < T; ++j) {
          float* row = dqkv + (b * T + j) * S;
          for (int64_t d = 0; d < D; ++d) {
            row[(H + g) * D + d] = dkT[d * t.ld + j];
            row[(H + KV + g) * D + d] = dvT[d * t.ld + j];
          }
        }
      }
  }
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
