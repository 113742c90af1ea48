// Adding special tokens: new ids appended, embedding and lm_head grown with mean rows,
// and the exported folder reloads with the extended vocabulary.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "model/golden.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace lathe {
namespace {

TEST(SpecialTokens, ModelGrowsAndFinalFolderReloadsWithNewVocabulary) {
  const std::string dir = testing::temp_dir("special_tokens");
  const std::string model = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K";
  std::ofstream(dir + "/tokens.json") << R"({"tokens": ["<|user|>", "<|assistant|>"]})";
  Config c;
  c.model.path = model;
  c.model.special_tokens = dir + "/tokens.json";
  c.data.train = std::string(LATHE_SOURCE_DIR) + "/tests/data/fixtures/gsm8k_train_head.jsonl";
  c.data.format = "gsm8k";
  c.data.seq_len = 128;
  c.data.cache_dir = dir + "/cache";
  c.train.precision = "fp32";
  c.train.batch_size = 2;
  c.train.max_steps = 1;
  c.train.threads = 2;
  c.output.dir = dir + "/run";

  Trainer t(c);
  const LlamaConfig& mc = t.model().config();
  ASSERT_EQ(mc.vocab_size, 514);
  // New rows start as the mean of the 512 pretrained rows.
  const float* embed = t.model().params() + t.model().table().embed;
  for (int64_t col : {0, 17, 63}) {
    double mean = 0;
    for (int64_t r = 0; r < 512; ++r) mean += embed[r * mc.hidden_size + col];
    mean /= 512;
    EXPECT_NEAR(embed[512 * mc.hidden_size + col], mean, 1e-6);
    EXPECT_NEAR(embed[513 * mc.hidden_size + col], mean, 1e-6);
  }
  t.run();

  const std::string final_dir = dir + "/run/final";
  EXPECT_EQ(llama_config_from_json_file(final_dir + "/config.json").vocab_size, 514);
  SafetensorsModel saved(final_dir);
  EXPECT_EQ(saved.get("model.embed_tokens.weight").shape, (std::vector<int64_t>{514, 64}));
  const auto tok = Tokenizer::load(final_dir);
  EXPECT_EQ(tok->vocab_size(), 514);
  EXPECT_EQ(tok->find("<|user|>"), std::optional<int32_t>(512));
  EXPECT_EQ(tok->find("<|assistant|>"), std::optional<int32_t>(513));
  const std::vector<int32_t> ids = tok->encode("<|user|>Hi<|assistant|>", false);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 512);
  EXPECT_EQ(ids.back(), 513);
  // An independent read of tokenizer.json: the tokens are listed as special added tokens.
  std::ifstream f(final_dir + "/tokenizer.json");
  const nlohmann::json j = nlohmann::json::parse(f);
  int found = 0;
  for (const auto& a : j.at("added_tokens"))
    if ((a.at("content") == "<|user|>" && a.at("id") == 512) ||
        (a.at("content") == "<|assistant|>" && a.at("id") == 513))
      found += a.at("special").get<bool>();
  EXPECT_EQ(found, 2);
}

TEST(SpecialTokens, MalformedTokensFileNamesTheFile) {
  const std::string dir = testing::temp_dir("special_tokens_bad");
  std::ofstream(dir + "/tokens.json") << R"({"tokens": "<|user|>"})";
  Config c;
  c.model.path = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K";
  c.model.special_tokens = dir + "/tokens.json";
  c.data.train = std::string(LATHE_SOURCE_DIR) + "/tests/data/fixtures/gsm8k_train_head.jsonl";
  c.data.format = "gsm8k";
  try {
    Trainer t(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokens.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lathe
