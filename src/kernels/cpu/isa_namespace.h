// Kernel files are compiled once per ISA level (see kernel_list.h); CMake passes
// -DLATHE_KERNEL_NS=isa_baseline|isa_avx2|isa_avx512 with the matching -march, and each
// file defines its kernels in lathe::cpu::LATHE_KERNEL_NS.
#pragma once
#include "kernels/cpu/kernel_list.h"

#ifndef LATHE_KERNEL_NS
#error "kernel files are compiled per ISA by CMakeLists.txt, which defines LATHE_KERNEL_NS"
#endif
