// The public CPU kernels: each calls the variant compiled for the ISA the kernels run on
// (core/cpu_isa.h). One switch per call; every kernel does at least a row of work.
#include "core/cpu_isa.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/kernel_list.h"
#include "kernels/cpu/matmul_bf16_weights.h"
#include "kernels/cpu/packed_matmul.h"
#include "kernels/cpu/packed_matmul_bf16.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/rows.h"
#include "kernels/cpu/swiglu.h"

namespace lathe::cpu {

#if defined(__x86_64__)
#define LATHE_DISPATCH_CPU_KERNEL(ret, name, params, args) \
  ret name params {                                        \
    switch (cpu_isa()) {                                   \
      case CpuIsa::Avx512:                                 \
        return isa_avx512::name args;                      \
      case CpuIsa::Avx2:                                   \
        return isa_avx2::name args;                        \
      default:                                             \
        return isa_baseline::name args;                    \
    }                                                      \
  }
#else
// Other architectures build the kernels once, for the compiler's baseline (docs/architecture.md).
#define LATHE_DISPATCH_CPU_KERNEL(ret, name, params, args) \
  ret name params { return isa_baseline::name args; }
#endif

LATHE_CPU_KERNELS(LATHE_DISPATCH_CPU_KERNEL)

}  // namespace lathe::cpu
