// A checkpoint folder through checkpoint_load: trainer_state.json (the manifest) and the
// state file(s) it names. Input: the manifest, optionally a NUL and then the bytes of
// state.safetensors (a valid 4-parameter one otherwise), loaded into a 4-parameter model.
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_util.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"

namespace {

constexpr size_t kParams = 4;

std::string default_state() {
  const std::string path = lathe::fuzz::scratch_dir() + "/default_state.safetensors";
  const float v[kParams] = {1, 2, 3, 4};
  lathe::safetensors_write(path, {{"params", lathe::DType::F32, {kParams}, v},
                                  {"adam.m", lathe::DType::F32, {kParams}, v},
                                  {"adam.v", lathe::DType::F32, {kParams}, v}});
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = lathe::fuzz::scratch_dir() + "/checkpoints/step_00000001";
    std::filesystem::create_directories(d);
    return d;
  }();
  static const std::string fallback = default_state();
  auto [manifest, state] = lathe::fuzz::split_at_nul(lathe::fuzz::as_text(data, size));
  lathe::fuzz::write_file(dir + "/trainer_state.json", manifest);
  lathe::fuzz::write_file(dir + "/state.safetensors", state.empty() ? fallback : state);
  float params[kParams], m[kParams], v[kParams];
  lathe::fuzz::run_guarded([&] {
    (void)lathe::checkpoint_load(dir, params, m, v, kParams);
    // A data-parallel reader's slice: the AdamW state of parameters [1, 3).
    (void)lathe::checkpoint_load_range(dir, params, m, v, kParams, 1, 2, true);
  });
  return 0;
}
