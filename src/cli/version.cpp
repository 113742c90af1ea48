// lathe --version: the version, the commit it was built from, and what it can run on here.
#include <string>

#include "backend/backend.h"
#include "backend/cpu/onednn_matmul.h"
#include "cli/verbs.h"
#include "core/cpu_isa.h"
#include "lathe_version.h"

namespace lathe::cli {

std::string version_text() {
  std::string s = std::string("lathe ") + LATHE_VERSION + " (commit " + LATHE_GIT_COMMIT + ")\n";
  s += "cpu backend: " + cpu_model_name() + "; lathe kernels " + cpu_isa_name(cpu_isa());
  if (cpu_isa() != cpu_isa_detected())
    s += std::string(" (capped by LATHE_CPU_ISA; the CPU has ") + cpu_isa_name(cpu_isa_detected()) +
         ")";
  s += "; oneDNN " + onednn_version() + " " + onednn_cpu_isa_name();
  s += OnednnMatmul().bf16_kernels() ? "; bf16 products on bf16 kernels\n"
                                     : "; bf16 products on fp32 kernels\n";
#ifdef LATHE_HAVE_CUDA
  const int n = cuda_device_count();
  s += "cuda backend: built; " + std::to_string(n) +
       (n == 1 ? " device visible\n" : " devices visible\n");
#else
  s += "cuda backend: not built (configure with -DLATHE_CUDA=ON)\n";
#endif
  return s;
}

}  // namespace lathe::cli
