// Launchers of the decoding kernels (attention_decode_kernels.cuh).
#include <cmath>

#include "kernels/cuda/attention_decode.h"
#include "kernels/cuda/attention_decode_kernels.cuh"

namespace lathe::cuda {
namespace {

using namespace decode_kernels;

template <int DL>
void decode_with(float* out, const float* qkv, const float* k_cache, const float* v_cache,
                 const AttentionDecodeArgs& a, cudaStream_t stream) {
  const int64_t group = a.H / a.KV;
  LATHE_CHECK(group <= 32, "CUDA attention_decode supports up to 32 query heads per KV head, not ",
              group);
  const size_t smem = decode_shared_bytes(group, a.D);
  allow_shared_memory(decode_kernel<DL>, smem);
  const dim3 grid(unsigned(a.M), unsigned(a.KV));
  LATHE_LAUNCH(decode_kernel<DL>, grid, unsigned(group * 32), smem, stream)
  (out, qkv, k_cache, v_cache, a.slot, a.pos, int(a.H), int(a.KV), int(a.D), a.capacity);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void attention_decode(float* out, const float* qkv, float* k_cache, float* v_cache,
                      const AttentionDecodeArgs& a, cudaStream_t stream) {
  if (a.M == 0) return;
  LATHE_CHECK(a.KV > 0 && a.H % a.KV == 0, "attention_decode: H = ", a.H,
              " must be a multiple of KV = ", a.KV);
  const uint64_t n = uint64_t(a.M * a.KV * a.D);
  LATHE_LAUNCH(cache_write_kernel, grid_for(n, 256), 256, 0, stream)
  (k_cache, v_cache, qkv, a.slot, a.pos, a.M, int(a.H), int(a.KV), int(a.D), a.capacity);
  CUDA_CHECK_LAUNCH();
  switch (lanes_per_head(a.D)) {
    case 1:
      return decode_with<1>(out, qkv, k_cache, v_cache, a, stream);
    case 2:
      return decode_with<2>(out, qkv, k_cache, v_cache, a, stream);
    case 4:
      return decode_with<4>(out, qkv, k_cache, v_cache, a, stream);
    default:
      return decode_with<8>(out, qkv, k_cache, v_cache, a, stream);
  }
}

}  // namespace lathe::cuda
