// A run folder holds one run: a fresh run refuses a folder with a run in it (or clears it
// with output.overwrite); a resume logs every step once, can start from a chosen checkpoint,
// and a damaged newest checkpoint is named along with the newest one that reads back.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "model/golden.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

using namespace lathe::testing;

Config four_steps(const std::string& out) {
  Config c = golden_train_config(golden_dir("gqa_untied"), out);
  c.train.max_steps = 4;
  c.output.save_every = 2;
  c.output.keep_last = 5;
  return c;
}

// The steps metrics.jsonl logs training losses for, in file order, with their losses.
std::vector<std::pair<int64_t, double>> logged_steps(const std::string& out) {
  std::vector<std::pair<int64_t, double>> steps;
  std::ifstream f(out + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) steps.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
  }
  return steps;
}

std::vector<int64_t> steps_only(const std::vector<std::pair<int64_t, double>>& s) {
  std::vector<int64_t> out;
  for (const auto& [step, loss] : s) out.push_back(step);
  return out;
}

std::string error_of(const Config& c) {
  try {
    Trainer t(c);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected the trainer to refuse";
  return "";
}

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << part << "\" not found in: " << text;
}

TEST(RunFolder, FreshRunRefusesAFolderHoldingARunAndOverwriteClearsIt) {
  const std::string out = temp_dir("run_folder_fresh");
  Trainer(four_steps(out)).run();
  const auto first = logged_steps(out);
  ASSERT_EQ(steps_only(first), (std::vector<int64_t>{1, 2, 3, 4}));

  const std::string e = error_of(four_steps(out));
  EXPECT_TRUE(Contains(e, "output.dir " + out + " already holds a run"));
  EXPECT_TRUE(Contains(e, "step_00000002, step_00000004"));
  EXPECT_TRUE(Contains(e, "final/"));
  EXPECT_TRUE(Contains(e, "metrics.jsonl (4 steps logged"));
  EXPECT_TRUE(Contains(e, "train.resume=true"));
  EXPECT_TRUE(Contains(e, "output.overwrite=true"));
  // Nothing of the old run was touched.
  EXPECT_EQ(logged_steps(out), first);
  EXPECT_TRUE(fs::exists(out + "/checkpoints/step_00000004"));

  // A user's own file in the folder stays; the old run's files go.
  std::ofstream(out + "/notes.txt") << "mine\n";
  Config again = four_steps(out);
  again.train.max_steps = 2;
  again.output.overwrite = true;
  Trainer(again).run();
  EXPECT_EQ(steps_only(logged_steps(out)), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(fs::exists(out + "/checkpoints/step_00000004"));
  EXPECT_TRUE(fs::exists(out + "/notes.txt"));
}

TEST(RunFolder, ResumeAfterACrashPastTheCheckpointLogsEveryStepOnce) {
  const std::string out = temp_dir("run_folder_crash");
  const auto whole = [&] {
    const std::string ref = temp_dir("run_folder_crash_ref");
    Trainer(four_steps(ref)).run();
    return logged_steps(ref);
  }();
  // The state a crash during step 4 leaves: steps 1-3 logged, the newest checkpoint step 2.
  Config c = four_steps(out);
  c.train.max_steps = 3;
  Trainer(c).run();  // its end writes step_00000003 and final/, which the crash never did
  fs::remove_all(out + "/checkpoints/step_00000003");
  fs::remove_all(out + "/final");
  ASSERT_EQ(steps_only(logged_steps(out)), (std::vector<int64_t>{1, 2, 3}));

  Config resume = four_steps(out);
  resume.train.resume = "true";
  Trainer(resume).run();
  EXPECT_EQ(logged_steps(out), whole);  // [1, 2, 3, 4] with the uninterrupted losses
}

TEST(RunFolder, ResumeFromAChosenCheckpointByStepOrFolder) {
  const std::string out = temp_dir("run_folder_chosen");
  Trainer(four_steps(out)).run();
  const auto whole = logged_steps(out);

  // By step number, in the same folder: the run is cut back to step 2 and continues.
  Config by_step = four_steps(out);
  by_step.train.resume = "2";
  Trainer t(by_step);
  EXPECT_EQ(t.steps_done(), 2);
  EXPECT_FALSE(fs::exists(out + "/checkpoints/step_00000004"));  // the abandoned future
  EXPECT_EQ(steps_only(logged_steps(out)), (std::vector<int64_t>{1, 2}));
  t.run();
  EXPECT_EQ(logged_steps(out), whole);

  // By folder, into a new run folder: it starts at step 3 and logs only its own steps.
  const std::string other = temp_dir("run_folder_chosen_other");
  Config by_folder = four_steps(other);
  by_folder.train.resume = out + "/checkpoints/step_00000002";
  Trainer(by_folder).run();
  EXPECT_EQ(logged_steps(other), (std::vector<std::pair<int64_t, double>>{whole[2], whole[3]}));
  EXPECT_TRUE(fs::exists(out + "/checkpoints/step_00000002"));  // the source is left alone

  Config missing = four_steps(out);
  missing.train.resume = "3";
  EXPECT_TRUE(Contains(error_of(missing),
                       "train.resume=3: " + out +
                           "/checkpoints has no complete checkpoint of step 3; its checkpoints "
                           "are of steps: 2, 4"));
}

TEST(RunFolder, DamagedNewestCheckpointNamesItsFileAndTheNewestValidOne) {
  const std::string out = temp_dir("run_folder_damaged");
  Trainer(four_steps(out)).run();
  const std::string newest = out + "/checkpoints/step_00000004";
  const std::string state = newest + "/state.safetensors";
  fs::resize_file(state, fs::file_size(state) / 2);

  Config resume = four_steps(out);
  resume.train.resume = "true";
  std::string e = error_of(resume);
  EXPECT_TRUE(Contains(e, "cannot resume from " + newest));
  EXPECT_TRUE(Contains(e, state + ": tensor"));
  EXPECT_TRUE(Contains(e, "truncated or corrupt"));
  EXPECT_TRUE(Contains(e, "The newest valid checkpoint is " + out +
                              "/checkpoints/step_00000002 (step 2): resume from it with "
                              "train.resume=2"));
  EXPECT_EQ(e.find("re-download"), std::string::npos) << e;

  // A manifest cut short gets the same treatment.
  const std::string manifest = newest + "/trainer_state.json";
  fs::resize_file(manifest, 20);
  e = error_of(resume);
  EXPECT_TRUE(Contains(e, manifest + ": the file is truncated or corrupt"));
  EXPECT_TRUE(Contains(e, "train.resume=2"));

  // Following the advice works, and drops the damaged checkpoint.
  resume.train.resume = "2";
  Trainer t(resume);
  EXPECT_EQ(t.steps_done(), 2);
  EXPECT_FALSE(fs::exists(newest));
}

}  // namespace
}  // namespace lathe
