// Tensors written straight from backend memory (a GPU's weights, AdamW moments, LoRA
// adapters): safetensors_write pulls them through its bounded host buffer piece by piece,
// so saving a 7B model's checkpoint needs 64 MiB of host staging, not 3 × 28 GB.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "io/safetensors.h"

namespace lathe {

// dst = fp32 values [first, first + count) of `device` (backend memory), converted to
// dtype. Where the host can read the backend's memory it converts in place; elsewhere each
// copy() moves at most max_bytes (bf16 goes through an fp32 scratch of that size).
void read_f32_as(Backend& be, const float* device, size_t first, size_t count, DType dtype,
                 void* dst, size_t max_bytes);

// A tensor of fp32 backend memory written as dtype through TensorToWrite::fill (fp32 that
// the host can read: straight from `device`). `be` and
// `device` must outlive the write. The bytes are those convert_from_f32 gives, so the
// file is the one a host copy would have produced.
TensorToWrite staged_tensor(std::string name, DType dtype, std::vector<int64_t> shape, Backend& be,
                            const float* device);

}  // namespace lathe
