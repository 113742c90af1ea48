// Math that the compiler can vectorize: libm's expf is a scalar call per element, which
// made it 15% of a training step's time in attention and the softmax.
#pragma once
#include "kernels/common/elementwise_math.h"

namespace lathe::cpu {

// exp(x) with ~2 ulp error over [-87, 88]: the one polynomial the CPU and CUDA kernels
// share (kernels/common/elementwise_math.h); pure arithmetic, so loops of it vectorize.
inline float exp_vec(float x) { return hd::exp_poly(x); }

}  // namespace lathe::cpu
