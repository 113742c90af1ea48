// A .safetensors file's bytes through the same header parser SafetensorsFile runs on its
// mapping. Every byte of every accepted tensor is read and converted, so an offset that
// escaped the checks is an ASan report, not a silent read.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lathe::fuzz::run_guarded([&] {
    std::vector<lathe::TensorInfo> tensors;
    std::map<std::string, std::string> metadata;
    lathe::safetensors_parse("fuzz.safetensors", data, size, &tensors, &metadata);
    std::vector<float> values;
    for (const lathe::TensorInfo& t : tensors) {
      // nbytes <= size was checked, so this is bounded by the input.
      values.resize(t.nbytes / lathe::dtype_size(t.dtype));
      lathe::convert_to_f32(t.data, t.dtype, values.data(), values.size());
    }
  });
  return 0;
}
