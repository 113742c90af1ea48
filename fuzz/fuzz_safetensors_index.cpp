// model.safetensors.index.json through SafetensorsModel, in a folder with two small real
// shards, so the index is checked against what the shards hold.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "io/safetensors.h"

namespace {

const std::string& model_dir() {
  static const std::string dir = [] {
    std::string d = lathe::fuzz::scratch_dir() + "/model";
    std::filesystem::create_directories(d);
    const float a[2] = {1.0f, -2.0f};
    const uint16_t b[3] = {0x3F80, 0x4000, 0xC040};  // bf16 1, 2, -3
    lathe::safetensors_write(d + "/model-00001-of-00002.safetensors",
                             {{"model.embed_tokens.weight", lathe::DType::F32, {2}, a}});
    lathe::safetensors_write(d + "/model-00002-of-00002.safetensors",
                             {{"lm_head.weight", lathe::DType::BF16, {3}, b}});
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = model_dir();
  lathe::fuzz::write_file(dir + "/model.safetensors.index.json", lathe::fuzz::as_text(data, size));
  lathe::fuzz::run_guarded([&] {
    lathe::SafetensorsModel model(dir);
    for (const std::string& name : model.names()) (void)model.get(name).numel();
  });
  return 0;
}
