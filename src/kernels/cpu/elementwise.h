#pragma once
#include <cstddef>

namespace lathe::cpu {

void round_to_bf16(float* x, size_t n);  // values stay fp32, rounded to bf16 precision
void add(float* y, const float* x, size_t n);  // y += x
double sum_squares(const float* x, size_t n);

}  // namespace lathe::cpu
