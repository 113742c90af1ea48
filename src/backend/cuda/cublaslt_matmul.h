// Matrix products through cuBLASLt, with the algorithm chosen once per shape: the
// heuristic query costs tens of microseconds, as much as a small product.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "backend/backend.h"
#include "backend/cuda/device_memory.h"

namespace lathe {

class CublasLtMatmul {
 public:
  // account (not null) counts the workspace and the bf16 staging buffer.
  CublasLtMatmul(cudaStream_t stream, DeviceMemoryAccount* account);
  ~CublasLtMatmul();
  CublasLtMatmul(const CublasLtMatmul&) = delete;
  CublasLtMatmul& operator=(const CublasLtMatmul&) = delete;
  void run(const MatmulArgs& a);

 private:
  // fp32: fp32 storage, COMPUTE_32F (no TF32: fp32 mode is the reference).
  // fp32_as_bf16: fp32 storage of bf16 values, COMPUTE_32F_FAST_16BF (exact conversion).
  // bf16: A converted to bf16 bits, B as MatmulArgs::B_bf16; fp32 C, COMPUTE_32F.
  enum class Mode { fp32, fp32_as_bf16, bf16 };
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, int, int,
                         int, int>;  // M N K lda ldb ldc ta tb mode align(A,B,C)
  void product(Mode mode, const MatmulArgs& a, const void* A, int64_t lda, const void* B,
               int64_t ldb);
  const cublasLtMatmulAlgo_t& algo(const Key& key, cublasLtMatmulDesc_t desc,
                                   cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                   cublasLtMatrixLayout_t lc);
  uint16_t* a_bf16(size_t elements);

  cudaStream_t stream_;
  DeviceMemoryAccount* account_;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  uint16_t* a_scratch_ = nullptr;  // A as bf16 bits, for B_bf16 products; grows, never shrinks
  size_t a_scratch_elems_ = 0;
  std::map<Key, cublasLtMatmulAlgo_t> algos_;
};

}  // namespace lathe
