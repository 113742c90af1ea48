#include "io/staged_tensor.h"

#include <algorithm>
#include <utility>

namespace lathe {

void read_f32_as(Backend& be, const float* device, size_t first, size_t count, DType dtype,
                 void* dst, size_t max_bytes) {
  if (count == 0) return;
  if (be.host_accessible()) {
    convert_from_f32(device + first, dst, dtype, count);
    return;
  }
  const size_t piece = std::max<size_t>(1, max_bytes / sizeof(float));  // floats per copy()
  if (dtype == DType::F32) {  // straight into the writer's buffer
    for (size_t i = 0; i < count; i += piece)
      be.copy(static_cast<float*>(dst) + i, device + first + i,
              std::min(piece, count - i) * sizeof(float));
    return;
  }
  std::vector<float> scratch(std::min(piece, count));
  const size_t es = dtype_size(dtype);
  for (size_t i = 0; i < count; i += piece) {
    const size_t n = std::min(piece, count - i);
    be.copy(scratch.data(), device + first + i, n * sizeof(float));
    convert_from_f32(scratch.data(), static_cast<uint8_t*>(dst) + i * es, dtype, n);
  }
}

TensorToWrite staged_tensor(std::string name, DType dtype, std::vector<int64_t> shape, Backend& be,
                            const float* device) {
  // fp32 the host can read is written from where it lies, without a staging copy.
  if (be.host_accessible() && dtype == DType::F32)
    return TensorToWrite(std::move(name), dtype, std::move(shape), device);
  TensorToWrite t(std::move(name), dtype, std::move(shape), nullptr);
  t.fill = [&be, device, dtype](void* dst, size_t offset, size_t bytes) {
    const size_t es = dtype_size(dtype);  // the writer's pieces hold whole elements
    read_f32_as(be, device, offset / es, bytes / es, dtype, dst, bytes);
  };
  return t;
}

}  // namespace lathe
