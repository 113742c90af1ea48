// The CUDA backend's own count of the device memory it holds: every cudaMalloc it makes
// (alloc(), kernel scratch, cuBLASLt's workspace and bf16 staging) adds, every cudaFree
// subtracts, and the high-water mark is what `lathe bench` reports as peak GPU memory.
// cudaMemGetInfo would also count other processes and the CUDA context (~500 MB), which
// a comparison with PyTorch's max_memory_allocated must leave out.
#pragma once
#include <algorithm>
#include <cstddef>

namespace lathe {

struct DeviceMemoryAccount {
  size_t live = 0, peak = 0;
  void allocated(size_t bytes) {
    live += bytes;
    peak = std::max(peak, live);
  }
  void freed(size_t bytes) { live -= std::min(live, bytes); }
};

}  // namespace lathe
