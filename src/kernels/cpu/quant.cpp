#include "kernels/cpu/quant.h"

#include <cmath>
#include <cstring>

#include "core/nf4_table.h"
#include "kernels/cpu/isa_namespace.h"

namespace lathe::cpu::LATHE_KERNEL_NS {

void dequantize_bf16(float* out, const uint16_t* in, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = uint32_t(in[i]) << 16;
    std::memcpy(&out[i], &u, 4);
  }
}

void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n,
                    int64_t block) {
  const size_t nb = (n + size_t(block) - 1) / size_t(block);
#pragma omp parallel for schedule(static)
  for (size_t b = 0; b < nb; ++b) {
    const float s = absmax[b];
    const size_t end = std::min(n, (b + 1) * size_t(block));
    for (size_t i = b * size_t(block); i < end; ++i) {
      const uint8_t byte = codes[i / 2];
      out[i] = kNf4Values[(i & 1) ? byte >> 4 : byte & 15] * s;
    }
  }
}

void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n, int64_t group) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const size_t g = i / size_t(group);
    out[i] = std::exp(lo_step[2 * g] + float(q[i]) * lo_step[2 * g + 1]);
  }
}

namespace {
inline uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

void dropout(float* out, const float* in, size_t n, float p, uint64_t seed, bool accumulate) {
  const float keep_scale = 1.0f / (1.0f - p);
  // Keep when the top 24 bits, as a fraction of 2^24, are >= p.
  const uint64_t threshold = uint64_t(double(p) * double(1u << 24));
  const uint64_t key = mix(seed + 0x9e3779b97f4a7c15ull);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const bool keep = (mix(key ^ (uint64_t(i) * 0x9e3779b97f4a7c15ull)) >> 40) >= threshold;
    const float v = keep ? in[i] * keep_scale : 0.0f;
    out[i] = accumulate ? out[i] + v : v;
  }
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
