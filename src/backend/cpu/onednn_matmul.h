// Matrix products through oneDNN's matmul primitive, with primitives cached by shape:
// building one costs far more than running a small one.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "backend/backend.h"

namespace lathe {

class OnednnMatmul {
 public:
  OnednnMatmul();
  ~OnednnMatmul();
  void run(const MatmulArgs& a);
  // What oneDNN chose for a shape, e.g. "brg:avx512_core" (for benchmarks and logs).
  std::string implementation(const MatmulArgs& a);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
