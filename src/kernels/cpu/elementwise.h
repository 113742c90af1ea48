#pragma once
#include <cstddef>
#include <cstdint>

namespace lathe::cpu {

void round_to_bf16(float* x, size_t n);  // values stay fp32, rounded to bf16 precision
// The bf16 bits (rounded as round_to_bf16) of a rows×cols matrix with row stride ld,
// written densely (row stride cols): the operand form bf16 products read.
void pack_bf16(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld);
void add(float* y, const float* x, size_t n);  // y += x
double sum_squares(const float* x, size_t n);

}  // namespace lathe::cpu
