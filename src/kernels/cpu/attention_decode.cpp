#include "kernels/cpu/attention_decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/isa_namespace.h"
#include "kernels/cpu/vec_math.h"

namespace lathe::cpu::LATHE_KERNEL_NS {
namespace {

// One (row, query head): the cache keeps each KV head's keys contiguous ([capacity, D]),
// so the score loop streams through memory; one score row (at most capacity floats) per
// thread is the only scratch.
void attend_row(float* __restrict o, const float* __restrict q, const float* __restrict K,
                const float* __restrict V, int64_t n, int64_t D, float* __restrict s) {
  const float scale = 1.0f / std::sqrt(float(D));
  for (int64_t j = 0; j < n; ++j) {
    const float* k = K + j * D;
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t d = 0; d < D; ++d) acc += q[d] * k[d];
    s[j] = acc * scale;
  }
  float m = s[0];
  for (int64_t j = 1; j < n; ++j) m = std::max(m, s[j]);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    s[j] = exp_vec(s[j] - m);
    sum += s[j];
  }
  for (int64_t d = 0; d < D; ++d) o[d] = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float p = s[j];
    const float* v = V + j * D;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) o[d] += p * v[d];
  }
  const float inv = 1.0f / sum;
  for (int64_t d = 0; d < D; ++d) o[d] *= inv;
}

}  // namespace

void attention_decode(float* out, const float* qkv, float* k_cache, float* v_cache,
                      const AttentionDecodeArgs& a) {
  const int64_t M = a.M, H = a.H, KV = a.KV, D = a.D, cap = a.capacity;
  const int64_t S = (H + 2 * KV) * D, group = H / KV;
  // A decode step of a small model is a few thousand multiply-adds: waking the thread
  // team costs more than that (stories260K decoded 2.5x slower with it), so threads start
  // only for work worth sharing.
  int64_t work = 0;
  for (int64_t m = 0; m < M; ++m) work += (int64_t(a.pos[m]) + 1) * H * D;
  const bool parallel = work >= (int64_t(1) << 16);
  // Every new row's k and v go into the cache before any query reads it: a prefill row
  // must see the keys of the earlier rows of its own prompt.
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < KV; ++g) {
      const int64_t at = ((int64_t(a.slot[m]) * KV + g) * cap + a.pos[m]) * D;
      std::memcpy(k_cache + at, qkv + m * S + (H + g) * D, size_t(D) * sizeof(float));
      std::memcpy(v_cache + at, qkv + m * S + (H + KV + g) * D, size_t(D) * sizeof(float));
    }
#pragma omp parallel if (parallel)
  {
    std::vector<float> s(size_t(std::max<int64_t>(cap, 1)));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / group;
        const int64_t base = (int64_t(a.slot[m]) * KV + g) * cap * D;
        attend_row(out + m * H * D + h * D, qkv + m * S + h * D, k_cache + base, v_cache + base,
                   int64_t(a.pos[m]) + 1, D, s.data());
      }
  }
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
