// The tokenizer files of an exported HF folder: copied from the source, plus a
// tokenizer.json where the source has only tokenizer.model (so that transformers reads the
// tokenizer lathe uses instead of converting tokenizer.model itself).
#include "io/hf_export.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "model/golden.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

std::string bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Loads `model_dir` and exports it as fp32 with `tokenizer_source`'s tokenizer files.
void export_with(const std::string& model_dir, const std::string& tokenizer_source,
                 const std::string& out) {
  auto be = make_cpu_backend(2);
  LlamaModel model(llama_config_from_json_file(model_dir + "/config.json"), *be, Precision::FP32,
                   false);
  model.load(SafetensorsModel(model_dir));
  export_hf_model(model, out, DType::F32, tokenizer_source);
}

TEST(HfExport, TokenizerModelAloneGetsATokenizerJsonThatEncodesTheSame) {
  const std::string dir = testing::temp_dir("hf_export_spm");
  const std::string llama2 = std::string(LATHE_SOURCE_DIR) + "/tests/data/tokenizer/llama2";
  const std::string src = dir + "/src";
  fs::create_directories(src);
  for (const char* name : {"tokenizer.model", "tokenizer_config.json"})
    fs::copy_file(fs::path(llama2) / name, fs::path(src) / name);
  export_with(testing::golden_dir("gqa_untied") + "/model", src, dir + "/out");

  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model",
                           "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / "out" / name)) << name;
  EXPECT_EQ(bytes_of(fs::path(dir) / "out/tokenizer.model"),
            bytes_of(fs::path(src) / "tokenizer.model"));
  const auto from_model = Tokenizer::load(src);
  const auto from_json = Tokenizer::load(dir + "/out");  // reads the written tokenizer.json
  for (const std::string text :
       {"Hello world", "   leading spaces", "a<s>b </s> <unk>", "naïve café 漢字 😀\n\ttab", ""}) {
    EXPECT_EQ(from_json->encode(text), from_model->encode(text)) << text;
    EXPECT_EQ(from_json->encode(text, false), from_model->encode(text, false)) << text;
  }
  // The source's tokenizer_config.json keys are kept (transformers reads "legacy" from it).
  const nlohmann::json config = testing::read_json(dir + "/out/tokenizer_config.json");
  EXPECT_EQ(config.at("legacy"), true);
  EXPECT_EQ(config.at("model_max_length"), 2048);
}

// A model trained on pre-tokenized rows never read its tokenizer: one lathe cannot read is
// copied as it is, and the export still succeeds.
TEST(HfExport, UnreadableTokenizerModelIsCopiedWithoutATokenizerJson) {
  const std::string dir = testing::temp_dir("hf_export_bad_tokenizer");
  fs::create_directories(dir + "/src");
  std::ofstream(dir + "/src/tokenizer.model") << "not a tokenizer";
  export_with(testing::golden_dir("gqa_untied") + "/model", dir + "/src", dir + "/out");
  EXPECT_EQ(bytes_of(fs::path(dir) / "out/tokenizer.model"), "not a tokenizer");
  EXPECT_FALSE(fs::exists(fs::path(dir) / "out/tokenizer.json"));
  EXPECT_TRUE(fs::exists(fs::path(dir) / "out/model.safetensors"));
}

TEST(HfExport, TokenizerFilesOfAJsonSourceAreCopiedUnchanged) {
  const std::string dir = testing::temp_dir("hf_export_json");
  const std::string stories = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K";
  export_with(stories, stories, dir + "/out");
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    EXPECT_EQ(bytes_of(fs::path(dir) / "out" / name), bytes_of(fs::path(stories) / name)) << name;
  EXPECT_FALSE(fs::exists(fs::path(dir) / "out/special_tokens_map.json"));
  EXPECT_FALSE(fs::exists(fs::path(dir) / "out/tokenizer.model"));
}

}  // namespace
}  // namespace lathe
