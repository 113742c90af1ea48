// LoRA through the real binary: train an adapter, check it against PEFT's layout with an
// independent reader, continue training from it, merge it, and load the merged model.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "backend/backend.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "model/golden.h"
#include "model/llama.h"
#include "support/command.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

struct ShellRun {
  int status;
  std::string output;
};

ShellRun sh(const std::string& cmd) {
  const testing::CommandResult r = testing::run_command(cmd + " 2>&1");
  return {r.status, r.out};
}

TEST(LoraCli, TrainSavesAPeftAdapterThatMergesIntoTheBase) {
  const std::string golden = testing::golden_dir("gqa_untied");
  const std::string dir = testing::temp_dir("lora_cli");
  const std::string lathe = LATHE_BINARY;
  const std::string common = " model.path=" + golden + "/model data.train=" + golden +
                             "/train/data.jsonl data.seq_len=24 train.batch_size=2 train.threads=2 "
                             "train.lr=1e-2 peft.method=lora peft.r=4 peft.alpha=8 "
                             "peft.target_modules=all-linear train.precision=fp32 ";
  ShellRun t =
      sh(lathe + " train /dev/null" + common + "train.max_steps=4 output.dir=" + dir + "/a");
  ASSERT_EQ(t.status, 0) << t.output;
  EXPECT_NE(t.output.find("PEFT LoRA adapter"), std::string::npos) << t.output;
  const std::string adapter = dir + "/a/final";
  ASSERT_TRUE(fs::exists(adapter + "/adapter_config.json"));

  ShellRun check =
      sh("/usr/bin/python3 " + std::string(LATHE_SOURCE_DIR) +
         "/tests/reference/check_peft_adapter.py " + adapter + " " + golden + "/model/config.json");
  EXPECT_EQ(check.status, 0) << check.output;
  EXPECT_NE(check.output.find("checked 28 tensors"), std::string::npos) << check.output;

  // Training moved B off zero, so the adapter changes the model.
  const LlamaConfig cfg = llama_config_from_json_file(golden + "/model/config.json");
  const LoraSpec spec = read_peft_config(adapter);
  EXPECT_EQ(spec.r, 4);
  EXPECT_EQ(spec.targets.size(), size_t(kNumProj));

  // Continue training from the adapter.
  ShellRun cont = sh(lathe + " train /dev/null" + common +
                     "train.max_steps=2 peft.adapter=" + adapter + " output.dir=" + dir + "/b");
  EXPECT_EQ(cont.status, 0) << cont.output;

  ShellRun merge = sh(lathe + " merge --base " + golden + "/model --adapter " + adapter + " -o " +
                      dir + "/merged --dtype fp32");
  ASSERT_EQ(merge.status, 0) << merge.output;
  auto be = make_cpu_backend(2);
  SafetensorsModel merged(dir + "/merged"), base(golden + "/model");
  const TensorInfo& wq = merged.get("model.layers.1.self_attn.q_proj.weight");
  const TensorInfo& bq = base.get("model.layers.1.self_attn.q_proj.weight");
  ASSERT_EQ(wq.shape, bq.shape);
  double diff = 0;
  for (int64_t i = 0; i < wq.numel(); ++i)
    diff = std::max(diff, double(std::fabs(static_cast<const float*>(wq.data)[i] -
                                           static_cast<const float*>(bq.data)[i])));
  EXPECT_GT(diff, 1e-6);  // the adapter was folded in
  EXPECT_TRUE(fs::exists(dir + "/merged/config.json"));

  // A mismatched adapter is refused by name.
  ShellRun bad = sh(lathe + " train /dev/null" + common + "train.max_steps=1 peft.adapter=" + dir +
                    "/nowhere output.dir=" + dir + "/c");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("adapter_config.json"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace lathe
