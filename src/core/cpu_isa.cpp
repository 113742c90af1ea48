#include "core/cpu_isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "core/error.h"

namespace lathe {

CpuIsa cpu_isa_detected() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const CpuIsa isa = [] {
    __builtin_cpu_init();
    const bool v4 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                    __builtin_cpu_supports("avx512vl");
    const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("bmi2");
    if (v3 && v4) return CpuIsa::Avx512;
    if (v3) return CpuIsa::Avx2;
    return CpuIsa::Baseline;
  }();
  return isa;
#else
  return CpuIsa::Baseline;
#endif
}

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    // CPUID leaf 7 subleaf 1, EAX bit 5 (Intel SDM vol. 2A, table 3-8); read directly
    // because the compilers' __builtin_cpu_supports names differ across versions.
    if (cpu_isa_detected() != CpuIsa::Avx512 || !__get_cpuid_count(7, 1, &a, &b, &c, &d))
      return false;
    return (a & (1u << 5)) != 0;
  }();
  return has;
#else
  return false;
#endif
}

CpuIsa parse_cpu_isa(const std::string& s) {
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "baseline" || l == "sse2" || l == "x86-64") return CpuIsa::Baseline;
  if (l == "avx2" || l == "x86-64-v3") return CpuIsa::Avx2;
  if (l == "avx512" || l == "x86-64-v4") return CpuIsa::Avx512;
  fail("LATHE_CPU_ISA=", s, ": expected baseline, avx2 or avx512");
}

CpuIsa cpu_isa() {
  static const CpuIsa isa = [] {
    const CpuIsa detected = cpu_isa_detected();
    const char* cap = std::getenv("LATHE_CPU_ISA");
    if (!cap || !*cap) return detected;
    return std::min(detected, parse_cpu_isa(cap));
  }();
  return isa;
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512:
      return "avx512";
    case CpuIsa::Avx2:
      return "avx2";
    default:
      return "baseline";
  }
}

int usable_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    std::string name = line.substr(colon + 1);
    name.erase(0, name.find_first_not_of(" \t"));
    return name;
  }
  return "unknown CPU";
}

}  // namespace lathe
