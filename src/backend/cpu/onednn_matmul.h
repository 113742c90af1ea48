// Matrix products through oneDNN's matmul primitive, with primitives cached by shape:
// building one costs far more than running a small one.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"

namespace lathe {

// The ISA oneDNN's kernels run on ("avx2", "avx512_core_bf16", ...) and its version.
std::string onednn_cpu_isa_name();
std::string onednn_version();

class OnednnMatmul {
 public:
  // allow_bf16: run products with bf16 operands on bf16 kernels when the CPU has bf16
  // dot products (AVX512_BF16, AMX); they are about twice as fast as fp32 ones there.
  explicit OnednnMatmul(bool allow_bf16 = true);
  ~OnednnMatmul();
  void run(const MatmulArgs& a);
  bool bf16_kernels() const;
  // What oneDNN chose for a shape, e.g. "brg:avx512_core_bf16" (for benchmarks and logs).
  std::string implementation(const MatmulArgs& a);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
