// NF4 (QLoRA's 4-bit NormalFloat): 16 levels at quantiles of a standard normal, scaled to
// [-1, 1], with one absmax scale per block of 64 weights. Quantization happens once, when a
// frozen base is loaded, so it runs on the host.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lathe {

// bitsandbytes' NF4 code book.
inline constexpr float kNf4Values[16] = {
    -1.0f,         -0.6961928009986877f, -0.5250730514526367f,  -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f,  0.16093020141124725f,  0.24611230194568634f,  0.33791524171829224f,
    0.44070982933044434f,  0.5626170039176941f,   0.7229568362236023f,   1.0f};

inline constexpr int64_t kNf4Block = 64;   // weights per absmax scale
inline constexpr int64_t kScaleGroup = 256;  // scales per double-quantization group

struct Nf4Tensor {
  std::vector<uint8_t> codes;   // (n + 1) / 2 bytes
  std::vector<float> absmax;    // one per block
};

// Nearest code of w / absmax for each weight (ties to the lower code, as midpoints decide).
Nf4Tensor quantize_nf4(const float* w, size_t n);

// The scales as 8-bit codes on a log scale, per group of kScaleGroup: lo_step holds
// (log of the smallest, log step) per group. A zero scale (an all-zero block) is stored as
// the group's smallest positive scale, which still decodes that block to zeros.
struct Log8Scales {
  std::vector<uint8_t> q;
  std::vector<float> lo_step;
};
Log8Scales quantize_log8(const std::vector<float>& scales);

}  // namespace lathe
