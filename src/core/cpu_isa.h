// Which x86-64 vector ISA lathe's own CPU kernels run on. Each kernel file is compiled once
// per level (src/kernels/cpu/dispatch.cpp picks one at run time), so one binary runs on
// every x86-64 CPU and is fast where it can be. LATHE_CPU_ISA=baseline|avx2|avx512 caps the
// level (never raises it above what the CPU has): CI runs part of the suite on the AVX2
// path of an AVX-512 machine that way, beside ONEDNN_MAX_CPU_ISA=AVX2 for oneDNN.
#pragma once
#include <string>

namespace lathe {

// The levels are x86-64 psABI levels: baseline = x86-64 (SSE2), avx2 = x86-64-v3 (AVX2,
// FMA, F16C, BMI2), avx512 = x86-64-v4 (AVX-512 F/BW/CD/DQ/VL).
enum class CpuIsa { Baseline = 0, Avx2 = 1, Avx512 = 2 };

CpuIsa cpu_isa_detected();  // what the CPU supports
CpuIsa cpu_isa();           // what the kernels run on: detected, capped by LATHE_CPU_ISA
const char* cpu_isa_name(CpuIsa isa);
// Whether the CPU has AVX512_BF16 (VDPBF16PS) and the OS saves AVX-512 state.
bool cpu_has_avx512_bf16();
// Parses "baseline", "avx2" or "avx512" (case-insensitive); throws on anything else.
CpuIsa parse_cpu_isa(const std::string& s);
// CPUs this process may run on (its affinity mask; all online CPUs where that fails).
int usable_cpu_count();
// The CPU's model name from /proc/cpuinfo ("unknown CPU" where there is none).
std::string cpu_model_name();

}  // namespace lathe
