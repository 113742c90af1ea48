// Frozen-base dequantization and LoRA dropout's hashed mask, per element, shared by the
// CPU tests and the CUDA kernels (see hd.h); each matches cpu/quant.cpp.
#pragma once
#include <cstdint>

#include "kernels/common/hd.h"

namespace lathe::hd {

// NF4: element i is the low nibble of byte i/2 when i is even, the high one when odd.
LATHE_HD int nf4_code(const uint8_t* codes, uint64_t i) {
  const uint8_t byte = codes[i / 2];
  return (i & 1) ? byte >> 4 : byte & 15;
}

// log8 double quantization: exp(lo + q · step) for the group's (lo, step). The argument is
// rounded as on the CPU (no fused multiply-add): at |lo| ~ 9 one ulp of it is 1e-6 of the
// result.
LATHE_HD float log8_value(uint8_t q, float lo, float step) {
  return exp_f(add_rn(lo, mul_rn(float(q), step)));
}

// splitmix64's finalizer.
LATHE_HD uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Dropout's mask: one key per seed, element i kept when the top 24 bits of its hash, as
// a fraction of 2^24, are >= p (threshold = p · 2^24, computed in double as the CPU does).
LATHE_HD uint64_t dropout_key(uint64_t seed) { return mix64(seed + 0x9e3779b97f4a7c15ull); }
LATHE_HD uint64_t dropout_threshold(float p) { return uint64_t(double(p) * double(1u << 24)); }
LATHE_HD bool dropout_keep(uint64_t key, uint64_t i, uint64_t threshold) {
  return (mix64(key ^ (i * 0x9e3779b97f4a7c15ull)) >> 40) >= threshold;
}

}  // namespace lathe::hd
