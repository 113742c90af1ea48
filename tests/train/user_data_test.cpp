// Data files as users have them, trained end to end: the KubeRay PubMedQA recipe's JSON
// Lines in a file named .json, and the Ray fine-tuning template's {"input": ...} rows with
// their tokens.json of special tokens, read through data.field_map.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "model/golden.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

using namespace lathe::testing;

const std::string kSource = LATHE_SOURCE_DIR;

// Trains two steps on stories260K with the given overrides (as `lathe train` applies them)
// and returns the logged losses.
std::vector<double> train_losses(const std::string& out, std::vector<std::string> overrides) {
  std::vector<std::string> common = {"model.path=" + kSource + "/examples/stories260K",
                                     "data.seq_len=128",
                                     "data.shuffle=false",
                                     "data.cache_dir=" + out + "/cache",
                                     "train.precision=fp32",
                                     "train.device=cpu",
                                     "train.batch_size=2",
                                     "train.max_steps=2",
                                     "train.threads=2",
                                     "output.dir=" + out + "/run"};
  overrides.insert(overrides.begin(), common.begin(), common.end());
  Trainer(load_config("", overrides)).run();
  std::vector<double> losses;
  std::ifstream f(out + "/run/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  return losses;
}

TEST(UserData, PubmedqaJsonLinesNamedDotJsonTrainsLikeTheJsonlFile) {
  const std::string dir = temp_dir("user_data_pubmed");
  const std::string jsonl = kSource + "/tests/data/fixtures/pubmedqa_flat.jsonl";
  fs::copy_file(jsonl, dir + "/dataset.json");
  const auto as_json =
      train_losses(dir + "/a", {"data.train=" + dir + "/dataset.json", "data.format=pubmedqa"});
  const auto as_jsonl = train_losses(dir + "/b", {"data.train=" + jsonl, "data.format=pubmedqa"});
  ASSERT_EQ(as_json.size(), 2u);
  for (double l : as_json) EXPECT_TRUE(std::isfinite(l) && l > 0);
  EXPECT_EQ(as_json, as_jsonl);  // the same rows, so the same losses to the bit
}

TEST(UserData, RayTemplateRowsTrainThroughFieldMapWithTheirSpecialTokens) {
  const std::string dir = temp_dir("user_data_ray");
  // The Ray fine-tuning template's layout: one "input" column holding the whole example,
  // its parts marked by tokens that tokens.json adds to the vocabulary.
  {
    std::ofstream rows(dir + "/train.jsonl");
    for (const char* qa : {"<START_Q>Tom has 3 apples and eats one. How many are left?<END_Q>"
                           "<START_A>2<END_A>",
                           "<START_Q>What is 5 plus 4?<END_Q><START_A>9<END_A>",
                           "<START_Q>A box holds 6 eggs. How many in 2 boxes?<END_Q>"
                           "<START_A>12<END_A>",
                           "<START_Q>Half of 10?<END_Q><START_A>5<END_A>"})
      rows << nlohmann::json{{"input", qa}}.dump() << "\n";
    std::ofstream(dir + "/tokens.json")
        << R"({"tokens": ["<START_Q>", "<END_Q>", "<START_A>", "<END_A>"]})";
  }
  const std::vector<std::string> data = {"data.train=" + dir + "/train.jsonl",
                                         "model.special_tokens=" + dir + "/tokens.json"};
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), data.begin(), data.end());
    return more;
  };
  const auto text = train_losses(dir + "/text",
                                 with({"data.format=text", R"(data.field_map={"text": "input"})"}));
  ASSERT_EQ(text.size(), 2u);
  for (double l : text) EXPECT_TRUE(std::isfinite(l) && l > 0);
  const auto tok = Tokenizer::load(dir + "/text/run/final");
  for (const char* t : {"<START_Q>", "<END_Q>", "<START_A>", "<END_A>"})
    EXPECT_TRUE(tok->find(t).has_value()) << t;
  // The same rows through data.format=template with an empty prompt: the whole row is the
  // response, so the tokens and the losses are the same.
  const auto templ = train_losses(
      dir + "/template", with({"data.format=template",
                               "data.prompt_template=", R"(data.response_template="{input}")"}));
  EXPECT_EQ(templ, text);
}

}  // namespace
}  // namespace lathe
