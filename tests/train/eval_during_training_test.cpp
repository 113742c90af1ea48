// train.eval_every and output.keep_best: evals land in metrics.jsonl at the right steps,
// and the best checkpoint by the chosen metric is kept and named in best.json.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "model/golden.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

using namespace lathe::testing;

TEST(EvalDuringTraining, EvalEveryAndKeepBest) {
  const std::string dir = golden_dir("gqa_untied");
  Config c = golden_train_config(dir, temp_dir("eval_every"));
  c.data.test_split = 0.25;
  c.train.max_steps = 7;
  c.train.eval_every = 2;
  c.eval.metrics = {"loss", "ppl"};
  c.output.keep_best = "loss";
  c.output.keep_last = 1;
  c.output.save_every = 3;
  Trainer t(c);
  t.run();

  std::vector<int64_t> eval_steps;
  double best = std::numeric_limits<double>::infinity();
  int64_t best_step = -1;
  std::ifstream f(c.output.dir + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("eval_loss")) continue;
    EXPECT_NEAR(j["eval_ppl"].get<double>(), std::exp(j["eval_loss"].get<double>()), 1e-9);
    const int64_t step = j["step"];
    eval_steps.push_back(step);
    if (step > 0 && j["eval_loss"].get<double>() < best) best = j["eval_loss"], best_step = step;
  }
  // Before training, every 2 steps, at each save (3, 6), and at the end (7).
  EXPECT_EQ(eval_steps, (std::vector<int64_t>{0, 2, 3, 4, 6, 7}));
  const auto b = read_json(c.output.dir + "/checkpoints/best.json");
  EXPECT_EQ(b["metric"], "eval_loss");
  EXPECT_EQ(b["step"].get<int64_t>(), best_step);
  EXPECT_DOUBLE_EQ(b["value"].get<double>(), best);
  // The best survives keep_last=1 next to the newest.
  EXPECT_TRUE(fs::exists(c.output.dir + "/checkpoints/" + b["checkpoint"].get<std::string>()));
}

TEST(EvalDuringTraining, KeepBestNeedsEvalDataAndTheMetric) {
  const std::string dir = golden_dir("gqa_untied");
  Config c = golden_train_config(dir, temp_dir("keep_best_bad"));
  c.output.keep_best = "eval_loss";
  EXPECT_THROW({ Trainer t(c); }, Error);
  c.data.test_split = 0.25;
  c.output.keep_best = "bleu";
  try {
    Trainer t(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("eval.metrics"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lathe
