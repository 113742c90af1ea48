// NF4 quantization (QLoRA's 4-bit NormalFloat; the code book is core/nf4_table.h).
// Quantization happens once, when a frozen base is loaded, so it runs on the host.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/nf4_table.h"

namespace lathe {

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
