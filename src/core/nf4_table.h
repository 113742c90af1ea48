// NF4 (QLoRA's 4-bit NormalFloat) code book: 16 levels at quantiles of a standard normal,
// scaled to [-1, 1], with one absmax scale per block of 64 weights. It lives in core
// because both sides need it: model/nf4 quantizes with it on the host, and the dequantize
// kernels (src/kernels/cpu/quant.cpp and its CUDA twin) decode with it.
#pragma once
#include <cstdint>

namespace lathe {

// bitsandbytes' NF4 code book.
// clang-format off
inline constexpr float kNf4Values[16] = {
    -1.0f,         -0.6961928009986877f, -0.5250730514526367f,  -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f,  0.16093020141124725f,  0.24611230194568634f,  0.33791524171829224f,
    0.44070982933044434f,  0.5626170039176941f,   0.7229568362236023f,   1.0f};
// clang-format on

inline constexpr int64_t kNf4Block = 64;  // weights per absmax scale

}  // namespace lathe
