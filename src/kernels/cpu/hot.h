// Hot loops are compiled twice, for AVX-512 and for the baseline ISA; the loader picks
// one at run time (GCC ifunc), so one binary runs everywhere and is fast where it can be.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LATHE_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LATHE_HOT
#endif
