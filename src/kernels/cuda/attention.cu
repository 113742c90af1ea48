// Launchers of the attention kernels (attention_kernels.cuh).
#include <algorithm>
#include <cmath>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_kernels.cuh"

namespace lathe::cuda {
namespace {

using namespace attention_kernels;

Geometry geometry(const AttentionArgs& a) {
  LATHE_CHECK(a.KV > 0 && a.H % a.KV == 0, "attention: H = ", a.H,
              " query heads must be a multiple of KV = ", a.KV, " key/value heads");
  return Geometry{int(a.T), int(a.H), int(a.KV), int(a.D), (a.H + 2 * a.KV) * a.D, a.doc_start};
}

template <int DL>
void forward_with(float* out, float* lse, const float* qkv, const AttentionArgs& a,
                  cudaStream_t stream) {
  const Geometry g = geometry(a);
  const size_t smem = forward_shared_bytes(a.D);
  allow_shared_memory(attention_forward_kernel<DL>, smem);
  const dim3 grid(unsigned((a.T + kBlockRows - 1) / kBlockRows), unsigned(a.H), unsigned(a.B));
  LATHE_LAUNCH(attention_forward_kernel<DL>, grid, kWarps * 32, smem, stream)(out, lse, qkv, g);
  CUDA_CHECK_LAUNCH();
}

template <int DL>
void backward_with(float* dqkv, const float* delta, const float* dout, const float* lse,
                   const float* qkv, const AttentionArgs& a, cudaStream_t stream) {
  const Geometry g = geometry(a);
  const size_t dq_smem = dq_shared_bytes(a.D);
  allow_shared_memory(attention_dq_kernel<DL>, dq_smem);
  const dim3 dq_grid(unsigned((a.T + kBlockRows - 1) / kBlockRows), unsigned(a.H), unsigned(a.B));
  LATHE_LAUNCH(attention_dq_kernel<DL>, dq_grid, kWarps * 32, dq_smem, stream)
  (dqkv, dout, lse, delta, qkv, g);
  CUDA_CHECK_LAUNCH();
  const size_t kv_smem = dkv_shared_bytes(a.D);
  allow_shared_memory(attention_dkv_kernel<DL>, kv_smem);
  const dim3 kv_grid(unsigned((a.T + kTile - 1) / kTile), unsigned(a.KV), unsigned(a.B));
  LATHE_LAUNCH(attention_dkv_kernel<DL>, kv_grid, kKvWarps * 32, kv_smem, stream)
  (dqkv, dout, lse, delta, qkv, g);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void attention_forward(float* out, float* lse, const float* qkv, const AttentionArgs& a,
                       cudaStream_t stream) {
  if (a.B * a.T * a.H == 0) return;
  switch (lanes_per_head(a.D)) {
    case 1:
      return forward_with<1>(out, lse, qkv, a, stream);
    case 2:
      return forward_with<2>(out, lse, qkv, a, stream);
    case 4:
      return forward_with<4>(out, lse, qkv, a, stream);
    default:
      return forward_with<8>(out, lse, qkv, a, stream);
  }
}

void attention_backward(float* dqkv, float* delta, const float* dout, const float* out,
                        const float* lse, const float* qkv, const AttentionArgs& a,
                        cudaStream_t stream) {
  if (a.B * a.T * a.H == 0) return;
  const int64_t rows = a.B * a.T * a.H;
  LATHE_LAUNCH(attention_delta_kernel, unsigned((rows * 32 + 255) / 256), 256, 0, stream)
  (delta, dout, out, int(a.B), int(a.T), int(a.H), int(a.D));
  CUDA_CHECK_LAUNCH();
  switch (lanes_per_head(a.D)) {
    case 1:
      return backward_with<1>(dqkv, delta, dout, lse, qkv, a, stream);
    case 2:
      return backward_with<2>(dqkv, delta, dout, lse, qkv, a, stream);
    case 4:
      return backward_with<4>(dqkv, delta, dout, lse, qkv, a, stream);
    default:
      return backward_with<8>(dqkv, delta, dout, lse, qkv, a, stream);
  }
}

}  // namespace lathe::cuda
