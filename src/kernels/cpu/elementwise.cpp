#include "kernels/cpu/elementwise.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/isa_namespace.h"

namespace lathe::cpu::LATHE_KERNEL_NS {

void round_to_bf16(float* x, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

void pack_bf16(uint16_t* __restrict out, const float* __restrict in, int64_t rows, int64_t cols,
               int64_t ld) {
  if (ld == cols) {  // dense: one flat pass, split over threads whatever the shape
    const int64_t n = rows * cols;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(in[i]);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = in + r * ld;
    uint16_t* dst = out + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) dst[c] = f32_to_bf16(src[c]);
  }
}

void add(float* __restrict y, const float* __restrict x, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

double sum_squares(const float* x, size_t n) {
  // Blocks of fp32 sums added in fp64 in block order: accurate, and the same bits on
  // every run (an OpenMP reduction adds in thread-arrival order, which would make
  // clipping, and so resumed runs, differ in the last bit).
  const size_t blocks = (n + 4095) / 4096;
  std::vector<double> partial(blocks);
#pragma omp parallel for schedule(static)
  for (size_t b = 0; b < blocks; ++b) {
    float s = 0;
    const size_t end = (b + 1) * 4096 < n ? (b + 1) * 4096 : n;
#pragma omp simd reduction(+ : s)
    for (size_t i = b * 4096; i < end; ++i) s += x[i] * x[i];
    partial[b] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
