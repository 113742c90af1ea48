#pragma once
#include <cstdint>

namespace lathe::cpu {

// Rotary embedding in Hugging Face's rotate-half layout: for each head vector x of size
// D, x1 = x[:D/2], x2 = x[D/2:], out = (x1*cos - x2*sin, x2*cos + x1*sin) with the
// angle of (pos[m], i). cos_sin[p, 0:D/2] = cos, cos_sin[p, D/2:D] = sin.
// Applied in place to `heads` consecutive head vectors of each of M rows (row_stride
// floats apart). inverse = true rotates by the negative angle, which is the backward.
void rope_apply(float* x, const int32_t* pos, const float* cos_sin, int64_t M, int64_t heads,
                int64_t D, int64_t row_stride, bool inverse);

}  // namespace lathe::cpu
