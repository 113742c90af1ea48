// Models the generation tests share: the bundled stories260K (a real pretrained tiny Llama
// with its tokenizer) and the tiny random Llama of tests/reference/generate_ref.py.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "model/golden.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace lathe::gen_test {

struct LoadedModel {
  std::unique_ptr<Backend> be;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tok;  // null for the random model
};

inline LoadedModel load_model(const std::string& dir, Precision p, bool tokenizer) {
  LoadedModel m;
  m.be = make_cpu_backend(2);
  const LlamaConfig cfg = llama_config_from_json_file(dir + "/config.json");
  m.model = std::make_unique<LlamaModel>(cfg, *m.be, p, false);
  m.model->load(SafetensorsModel(dir));
  if (tokenizer) m.tok = Tokenizer::load(dir);
  return m;
}

// $LATHE_SOURCE_DIR, where set, replaces the source tree this binary was built from (a
// bundle run on another machine: scripts/gpu_check.sh).
inline std::string source_dir() {
  const char* env = std::getenv("LATHE_SOURCE_DIR");
  return env && *env ? env : LATHE_SOURCE_DIR;
}
inline std::string stories_dir() { return source_dir() + "/examples/stories260K"; }

// Loaded once per process (fp32).
inline LoadedModel& stories() {
  static LoadedModel m = load_model(stories_dir(), Precision::FP32, true);
  return m;
}

// The generate_ref.py fixture's folder; written by the reference.generation ctest fixture.
inline std::string golden_generate_dir() { return testing::golden_dir("generate"); }

inline bool have_golden_generate() {
  return std::filesystem::exists(golden_generate_dir() + "/expected.json");
}

#define LATHE_REQUIRE_GENERATE_GOLDEN()                                                        \
  ASSERT_TRUE(::lathe::gen_test::have_golden_generate())                                       \
      << ::lathe::gen_test::golden_generate_dir()                                              \
      << "/expected.json is missing: run the tests through ctest, whose reference.generation " \
         "fixture writes it (tests/reference/generate_ref.py)"

inline std::vector<std::vector<int32_t>> json_ids(const nlohmann::json& j) {
  return j.get<std::vector<std::vector<int32_t>>>();
}

}  // namespace lathe::gen_test
