// The CUDA backend: device memory through the CUDA runtime, matrix products through
// cuBLASLt (cublaslt_matmul.cpp) and the per-op kernels of src/kernels/cuda, all on one
// stream, behind the same Backend interface as the CPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cublaslt_matmul.h"
#include "backend/cuda/device_memory.h"
#include "core/error.h"
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_decode.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cross_entropy.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/quant.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/rows.h"
#include "kernels/cuda/swiglu.h"

namespace lathe {
namespace {

// Device scratch that grows to the largest request and is reused after that.
class Scratch {
 public:
  Scratch(cudaStream_t stream, DeviceMemoryAccount* account) : stream_(stream), account_(account) {}
  ~Scratch() { cudaFree(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* get(size_t count) {
    const size_t bytes = count * sizeof(T);
    if (bytes > bytes_) {
      CUDA_CHECK(cudaStreamSynchronize(stream_));  // kernels may still read the old one
      CUDA_CHECK(cudaFree(p_));
      account_->freed(bytes_);
      p_ = nullptr;
      CUDA_CHECK(cudaMalloc(&p_, bytes));
      account_->allocated(bytes);
      bytes_ = bytes;
    }
    return static_cast<T*>(p_);
  }

 private:
  cudaStream_t stream_;
  DeviceMemoryAccount* account_;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

cudaStream_t make_stream(int device) {
  CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t s = nullptr;
  // A blocking stream: work on the legacy default stream (a plain cudaMemcpy elsewhere)
  // stays ordered with it.
  CUDA_CHECK(cudaStreamCreate(&s));
  return s;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device)
      : device_(device),
        stream_(make_stream(device)),
        mm_(stream_, &memory_),
        delta_(stream_, &memory_),
        partial_(stream_, &memory_),
        row_loss_(stream_, &memory_) {}
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
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
  std::string matmul_kernels() const override { return "cuBLASLt"; }
  bool bf16_kernels() const override { return true; }  // tensor cores, see matmul
  int threads() const override { return 1; }

  void* alloc(size_t bytes) override {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
    sizes_[p] = bytes;
    memory_.allocated(bytes);
    return p;
  }
  void free(void* p) override {
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // pending kernels may still use it
    CUDA_CHECK(cudaFree(p));
    if (auto it = sizes_.find(p); it != sizes_.end()) {
      memory_.freed(it->second);
      sizes_.erase(it);
    }
  }
  size_t peak_memory_bytes() const override { return memory_.peak; }
  void copy(void* dst, const void* src, size_t bytes) override {
    // cudaMemcpyDefault: host or device on either side (unified addressing).
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void zero(void* p, size_t bytes) override { CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_)); }
  void sync() override { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  void matmul(const MatmulArgs& a) override { mm_.run(a); }

  void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t M,
                         int64_t C) override {
    cuda::embedding_forward(out, ids, table, M, C, stream_);
  }
  void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t M,
                          int64_t C) override {
    cuda::embedding_backward(dtable, ids, dout, M, C, stream_);
  }
  void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n,
                   int64_t C) override {
    cuda::gather_rows(dst, src, rows, n, C, stream_);
  }
  void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n,
                    int64_t C) override {
    cuda::scatter_rows(dst, src, rows, n, C, stream_);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t M,
                       int64_t C, float eps) override {
    cuda::rmsnorm_forward(out, rstd, x, w, M, C, eps, stream_);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                        const float* rstd, int64_t M, int64_t C) override {
    cuda::rmsnorm_backward(dx, dw, dout, x, w, rstd, M, C, stream_);
  }
  void rope_forward(float* qkv, const int32_t* pos, const float* cos_sin, int64_t M, int64_t heads,
                    int64_t D, int64_t row_stride, bool inverse) override {
    cuda::rope_apply(qkv, pos, cos_sin, M, heads, D, row_stride, inverse, stream_);
  }
  void attention_forward(float* out, float* lse, const float* qkv,
                         const AttentionArgs& a) override {
    cuda::attention_forward(out, lse, qkv, a, stream_);
  }
  void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                          const float* qkv, const AttentionArgs& a) override {
    float* delta = delta_.get<float>(size_t(a.B * a.H * a.T));
    cuda::attention_backward(dqkv, delta, dout, out, lse, qkv, a, stream_);
  }
  void attention_decode(float* out, const float* qkv, float* k_cache, float* v_cache,
                        const AttentionDecodeArgs& a) override {
    cuda::attention_decode(out, qkv, k_cache, v_cache, a, stream_);
  }
  void swiglu_forward(float* h, const float* gate_up, int64_t M, int64_t I) override {
    cuda::swiglu_forward(h, gate_up, M, I, stream_);
  }
  void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t M,
                       int64_t I) override {
    cuda::swiglu_backward(dgate_up, dh, gate_up, M, I, stream_);
  }
  // The per-row losses come back to the host and are added in row order, as the CPU does.
  double softmax_cross_entropy(float* logits, const int32_t* targets, int64_t M, int64_t V,
                               float scale) override {
    if (M == 0) return 0.0;
    double* rows = row_loss_.get<double>(size_t(M));
    cuda::softmax_cross_entropy(rows, logits, targets, M, V, scale, stream_);
    host_losses_.resize(size_t(M));
    copy(host_losses_.data(), rows, size_t(M) * sizeof(double));
    double total = 0;
    for (double l : host_losses_) total += l;
    return total;
  }
  void round_to_bf16(float* x, size_t n) override { cuda::round_to_bf16(x, n, stream_); }
  void pack_bf16(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld) override {
    cuda::pack_bf16(out, in, rows, cols, ld, stream_);
  }
  void add(float* y, const float* x, size_t n) override { cuda::add(y, x, n, stream_); }
  double sum_squares(const float* x, size_t n) override {
    double* partial = partial_.get<double>(cuda::sum_squares_scratch(n));
    cuda::sum_squares(partial, x, n, stream_);
    double total = 0;
    copy(&total, partial, sizeof total);
    return total;
  }
  void dequantize_bf16(float* out, const uint16_t* in, size_t n) override {
    cuda::dequantize_bf16(out, in, n, stream_);
  }
  void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n,
                      int64_t block) override {
    cuda::dequantize_nf4(out, codes, absmax, n, block, stream_);
  }
  void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n,
                       int64_t group) override {
    cuda::dequantize_log8(out, q, lo_step, n, group, stream_);
  }
  void dropout(float* out, const float* in, size_t n, float p, uint64_t seed,
               bool accumulate) override {
    cuda::dropout(out, in, n, p, seed, accumulate, stream_);
  }
  void adamw_step(float* param, const float* grad, float* m, float* v, float* rounded,
                  uint16_t* bits, size_t n, const AdamWArgs& a) override {
    cuda::adamw_step(param, grad, m, v, rounded, bits, n, a, stream_);
  }

 private:
  int device_;
  cudaStream_t stream_;
  // Before mm_ and the scratch buffers: their constructors already count into it.
  DeviceMemoryAccount memory_;
  std::unordered_map<void*, size_t> sizes_;  // alloc()'s blocks, for free()'s count
  CublasLtMatmul mm_;
  Scratch delta_;     // attention backward's rowsum(dO ∘ O), B·H·T floats
  Scratch partial_;   // sum_squares' per-chunk partial sums
  Scratch row_loss_;  // softmax_cross_entropy's per-row losses
  std::vector<double> host_losses_;
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
