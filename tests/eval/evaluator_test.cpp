// The evaluator's generation path on the real stories260K model: rows whose response is
// the model's own greedy continuation must score exact match 1, ROUGE 1 and BLEU 100;
// changing one row's response lowers exact match by exactly one row.
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "core/error.h"
#include "eval/evaluator.h"
#include "generate/generator.h"
#include "io/safetensors.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {

TEST(Evaluator, OwnGreedyContinuationsScorePerfectly) {
  const std::string dir = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K";
  auto be = make_cpu_backend(2);
  LlamaModel model(llama_config_from_json_file(dir + "/config.json"), *be, Precision::FP32, false);
  model.load(SafetensorsModel(dir));
  auto tok = Tokenizer::load(dir);
  const std::vector<std::string> texts = {"Once upon a time", "The dog ran", "Lily saw a big"};
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& t : texts) prompts.push_back(tok->encode(t));
  Generator gen(model, *be, tok.get());
  GenerationOptions go;
  go.max_new_tokens = 24;
  const std::vector<Generated> outs = gen.generate(prompts, go);

  std::vector<TokenRow> rows;
  for (size_t i = 0; i < prompts.size(); ++i) {
    TokenRow r;
    r.input_ids = prompts[i];
    r.labels.assign(prompts[i].size(), -100);
    for (int32_t id : outs[i].tokens) r.input_ids.push_back(id), r.labels.push_back(id);
    rows.push_back(r);
  }
  EvalSettings s;
  s.metrics = {"loss", "exact_match", "rouge", "bleu"};
  s.max_new_tokens = 24;
  const EvalReport r = evaluate(model, *be, tok.get(), rows, s);
  ASSERT_EQ(r.samples.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(r.samples[i].prediction, r.samples[i].reference);
  EXPECT_DOUBLE_EQ(r.metrics.at("exact_match"), 1.0);
  EXPECT_NEAR(r.metrics.at("rouge1"), 1.0, 1e-12);
  EXPECT_NEAR(r.metrics.at("rougeL"), 1.0, 1e-12);
  EXPECT_NEAR(r.metrics.at("bleu"), 100.0, 1e-9);
  EXPECT_GT(r.metrics.at("eval_loss"), 0.0);

  rows[1].labels.back() = rows[1].input_ids.back() = tok->encode("zebra", false).front();
  const EvalReport changed = evaluate(model, *be, tok.get(), rows, s);
  EXPECT_NEAR(changed.metrics.at("exact_match"), 2.0 / 3.0, 1e-12);
  EXPECT_LT(changed.metrics.at("bleu"), 100.0);
}

TEST(Evaluator, RowsWithoutAPromptSplitAreRefusedForGeneration) {
  const std::string dir = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K";
  auto be = make_cpu_backend(1);
  LlamaModel model(llama_config_from_json_file(dir + "/config.json"), *be, Precision::FP32, false);
  model.load(SafetensorsModel(dir));
  auto tok = Tokenizer::load(dir);
  std::vector<TokenRow> rows = {{tok->encode("Once upon a time"), {}}};
  EvalSettings s;
  s.metrics = {"exact_match"};
  try {
    evaluate(model, *be, tok.get(), rows, s);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train_on_prompt"), std::string::npos) << e.what();
  }
  s.metrics = {"accuracy"};
  EXPECT_THROW(evaluate(model, *be, tok.get(), rows, s), Error);
}

}  // namespace
}  // namespace lathe
