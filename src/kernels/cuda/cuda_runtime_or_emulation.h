// The CUDA runtime's declarations, or, in the host tests that emulate the GPU
// (tests/kernels/cuda_emulation.h), that emulation's stand-ins for what the kernels and
// launchers use.
#pragma once
#ifndef LATHE_CUDA_EMULATION
#include <cuda_runtime.h>
#endif
