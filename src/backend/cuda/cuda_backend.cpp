// The CUDA backend: device memory through the CUDA runtime and matrix products through
// cuBLASLt, behind the same Backend interface as the CPU. The per-op kernels
// (src/kernels/cuda) are the next step; until they exist each kernel entry point fails
// with a message saying so, rather than silently computing on the host.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "core/error.h"

namespace lathe {
namespace {

// Every CUDA and cuBLAS call is checked; the message names the call site and the
// library's own words.
#define CUDA_CHECK(call)                                                                    \
  do {                                                                                      \
    cudaError_t err_ = (call);                                                              \
    if (err_ != cudaSuccess)                                                                \
      ::lathe::fail("CUDA error at ", __FILE__, ":", __LINE__, ": ", cudaGetErrorString(err_)); \
  } while (0)
#define CUBLAS_CHECK(call)                                                                  \
  do {                                                                                      \
    cublasStatus_t st_ = (call);                                                            \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                       \
      ::lathe::fail("cuBLASLt error at ", __FILE__, ":", __LINE__, ": status ", int(st_));  \
  } while (0)

[[noreturn]] void not_yet(const char* op) {
  fail("the CUDA backend has no '", op,
       "' kernel yet: train on the CPU backend (the default) for now");
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaStreamCreate(&stream_));
    CUBLAS_CHECK(cublasLtCreate(&lt_));
    CUDA_CHECK(cudaMalloc(&workspace_, kWorkspace));
  }
  ~CudaBackend() override {
    cudaFree(workspace_);
    cublasLtDestroy(lt_);
    cudaStreamDestroy(stream_);
  }
  std::string name() const override { return "cuda"; }
  std::string description() const override {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, device_) != cudaSuccess)
      return "cuda:" + std::to_string(device_);
    return "cuda:" + std::to_string(device_) + " (" + prop.name + ", " +
           std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
  }
  bool bf16_kernels() const override { return true; }  // tensor cores, see matmul
  int threads() const override { return 1; }

  void* alloc(size_t bytes) override {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
    return p;
  }
  void free(void* p) override { cudaFree(p); }
  void copy(void* dst, const void* src, size_t bytes) override {
    // cudaMemcpyDefault: host or device on either side (unified addressing).
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void zero(void* p, size_t bytes) override { CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_)); }
  void sync() override { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: a row-major matrix is
  // its own transpose in column-major terms, so B and A swap places and keep their ops.
  // bf16 operands: fp32 storage holding bf16 values, so letting the tensor cores convert
  // them to bf16 (COMPUTE_32F_FAST_16BF) is exact; accumulation stays fp32.
  void matmul(const MatmulArgs& a) override {
    if (!a.B) not_yet("matmul on bf16-stored weights (MatmulArgs::B_bf16 without B)");
    cublasLtMatmulDesc_t desc;
    const cublasComputeType_t compute =
        a.bf16_operands ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F));
    const cublasOperation_t op_b = a.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = a.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_b, sizeof op_b));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_a, sizeof op_a));
    cublasLtMatrixLayout_t lb, la, lc;
    // As stored, column-major: B is [N,K] (or [K,N] when transposed), A is [K,M] (or [M,K]).
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, a.trans_b ? a.K : a.N,
                                            a.trans_b ? a.N : a.K, a.ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, a.trans_a ? a.M : a.K,
                                            a.trans_a ? a.K : a.M, a.lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, a.N, a.M, a.ldc));
    CUBLAS_CHECK(cublasLtMatmul(lt_, desc, &a.alpha, a.B, lb, a.A, la, &a.beta, a.C, lc, a.C, lc,
                                nullptr, workspace_, kWorkspace, stream_));
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatmulDescDestroy(desc);
  }

  void embedding_forward(float*, const int32_t*, const float*, int64_t, int64_t) override {
    not_yet("embedding_forward");
  }
  void embedding_backward(float*, const int32_t*, const float*, int64_t, int64_t) override {
    not_yet("embedding_backward");
  }
  void rmsnorm_forward(float*, float*, const float*, const float*, int64_t, int64_t, float) override {
    not_yet("rmsnorm_forward");
  }
  void rmsnorm_backward(float*, float*, const float*, const float*, const float*, const float*,
                        int64_t, int64_t) override {
    not_yet("rmsnorm_backward");
  }
  void rope_forward(float*, const int32_t*, const float*, int64_t, int64_t, int64_t, int64_t,
                    bool) override {
    not_yet("rope");
  }
  void attention_forward(float*, float*, const float*, const AttentionArgs&) override {
    not_yet("attention_forward");
  }
  void attention_backward(float*, const float*, const float*, const float*, const float*,
                          const AttentionArgs&) override {
    not_yet("attention_backward");
  }
  void attention_decode(float*, const float*, float*, float*, const AttentionDecodeArgs&) override {
    not_yet("attention_decode");
  }
  void swiglu_forward(float*, const float*, int64_t, int64_t) override { not_yet("swiglu_forward"); }
  void swiglu_backward(float*, const float*, const float*, int64_t, int64_t) override {
    not_yet("swiglu_backward");
  }
  double softmax_cross_entropy(float*, const int32_t*, int64_t, int64_t, float) override {
    not_yet("softmax_cross_entropy");
  }
  void round_to_bf16(float*, size_t) override { not_yet("round_to_bf16"); }
  void pack_bf16(uint16_t*, const float*, int64_t, int64_t, int64_t) override { not_yet("pack_bf16"); }
  void add(float*, const float*, size_t) override { not_yet("add"); }
  double sum_squares(const float*, size_t) override { not_yet("sum_squares"); }
  void dequantize_bf16(float*, const uint16_t*, size_t) override { not_yet("dequantize_bf16"); }
  void dequantize_nf4(float*, const uint8_t*, const float*, size_t, int64_t) override {
    not_yet("dequantize_nf4");
  }
  void dequantize_log8(float*, const uint8_t*, const float*, size_t, int64_t) override {
    not_yet("dequantize_log8");
  }
  void dropout(float*, const float*, size_t, float, uint64_t, bool) override { not_yet("dropout"); }
  void adamw_step(float*, const float*, float*, float*, float*, uint16_t*, size_t,
                  const AdamWArgs&) override {
    not_yet("adamw_step");
  }

 private:
  static constexpr size_t kWorkspace = size_t(32) << 20;
  int device_;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace

int cuda_device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  return std::make_unique<CudaBackend>(device);
}

}  // namespace lathe
