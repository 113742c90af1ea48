// Functions compiled for both the host (g++) and the device (nvcc): the per-element math
// of the kernels is written once here, so the CPU tests run the same code the GPU runs.
#pragma once
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define LATHE_HD __host__ __device__ __forceinline__
#else
#define LATHE_HD inline
#endif

namespace lathe::hd {

// Bit casts that work on both sides (std::bit_cast is not a device function).
LATHE_HD uint32_t float_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

LATHE_HD float bits_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

LATHE_HD float sqrt_f(float x) {
#ifdef __CUDA_ARCH__
  return sqrtf(x);  // IEEE-rounded, as std::sqrt (nvcc's default -prec-sqrt=true)
#else
  return __builtin_sqrtf(x);
#endif
}

LATHE_HD float exp_f(float x) {
#ifdef __CUDA_ARCH__
  return expf(x);  // <= 2 ulp (CUDA C Programming Guide, table of float functions)
#else
  return __builtin_expf(x);
#endif
}

// A product and a sum each rounded on its own, as the host computes them: nvcc would
// otherwise fuse a·b + c into one fma, which rounds once and so differs in the last bit.
LATHE_HD float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

LATHE_HD float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

}  // namespace lathe::hd
