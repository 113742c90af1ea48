#include "kernels/cuda/check.h"
#include "kernels/cuda/embedding.h"

namespace lathe::cuda {
namespace {

// One block per row; threads stride over the C columns (coalesced on both sides).
__global__ void embedding_forward_kernel(float* out, const int32_t* ids, const float* table,
                                         int64_t C) {
  const int64_t m = blockIdx.x;
  const float* src = table + int64_t(ids[m]) * C;
  float* dst = out + m * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
}

// Atomics rather than a sort by token: a batch of 8k rows over a 32k-128k vocabulary
// rarely repeats a token often enough for contention to matter, and the table gradient
// is summed over micro-batches anyway. The order of the adds, and so the last bit, may
// differ between runs.
__global__ void embedding_backward_kernel(float* dtable, const int32_t* ids, const float* dout,
                                          int64_t C) {
  const int64_t m = blockIdx.x;
  float* dst = dtable + int64_t(ids[m]) * C;
  const float* src = dout + m * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(dst + c, src[c]);
}

}  // namespace

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t M, int64_t C,
                       cudaStream_t stream) {
  if (M == 0) return;
  embedding_forward_kernel<<<unsigned(M), 256, 0, stream>>>(out, ids, table, C);
  CUDA_CHECK_LAUNCH();
}

void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t M, int64_t C,
                        cudaStream_t stream) {
  if (M == 0) return;
  embedding_backward_kernel<<<unsigned(M), 256, 0, stream>>>(dtable, ids, dout, C);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lathe::cuda
