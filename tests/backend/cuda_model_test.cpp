// Whole models on the CUDA backend: the golden Llamas' logits and every gradient against
// the CPU backend, ten AdamW steps against the PyTorch reference (fp32 and bf16),
// stories260K's greedy run against llama2.c's, and `lathe train train.device=cuda`
// through the real binary, including checkpoints that move between the two devices.
// Needs a GPU: skipped, with the reason, when lathe is built without CUDA or no device is
// present. The models go through make_backend("cuda"), so this compiles in every build.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backend/cuda_test_util.h"
#include "backend/host_staging.h"
#include "backend/select.h"
#include "generate/generate_test_util.h"
#include "generate/generator.h"
#include "model/golden.h"
#include "model/llama.h"
#include "support/command.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

using namespace lathe::testing;

std::vector<float> to_host(Backend& be, const float* p, size_t n) {
  HostRead<float> r(be, p, n);
  return {r.get(), r.get() + n};
}

class CudaModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    LATHE_REQUIRE_CUDA();
    dir_ = golden_dir(GetParam());
    cfg_ = llama_config_from_json_file(dir_ + "/model/config.json");
    cpu_ = make_cpu_backend(2);
    gpu_ = make_backend("cuda", 0);
    weights_ = std::make_unique<SafetensorsModel>(dir_ + "/model");
    forward_ = std::make_unique<SafetensorsFile>(dir_ + "/forward.safetensors");
  }
  std::unique_ptr<LlamaModel> make_model(Backend& be, bool checkpointing = false) {
    auto m = std::make_unique<LlamaModel>(cfg_, be, Precision::FP32, checkpointing);
    m->load(*weights_);
    return m;
  }
  std::string dir_;
  LlamaConfig cfg_;
  std::unique_ptr<Backend> cpu_, gpu_;
  std::unique_ptr<SafetensorsModel> weights_;
  std::unique_ptr<SafetensorsFile> forward_;
};

TEST_P(CudaModel, Fp32LogitsAndLossMatchCpu) {
  const Batch b = golden_batch(*forward_);
  const size_t n = size_t(b.B * b.T * cfg_.vocab_size);
  std::vector<float> on_cpu(n), on_gpu(n);
  auto cm = make_model(*cpu_), gm = make_model(*gpu_);
  const double loss_cpu = cm->forward(b, on_cpu.data()) / double(b.num_targets());
  const double loss_gpu = gm->forward(b, on_gpu.data()) / double(b.num_targets());
  const double err = rel_error(on_gpu.data(), on_cpu.data(), n);
  EXPECT_LT(err, 1e-5);
  EXPECT_NEAR(loss_gpu, loss_cpu, 1e-5 * std::fabs(loss_cpu));
  // The evaluation path (no logits: the loss in vocabulary-sized chunks of rows).
  const double chunked = gm->forward(b, nullptr) / double(b.num_targets());
  EXPECT_NEAR(chunked, loss_cpu, 1e-5 * std::fabs(loss_cpu));
  const float* ref = static_cast<const float*>(forward_->find("logits")->data);
  std::printf("[ reached  ] logits rel error vs cpu %.2e, vs PyTorch %.2e\n", err,
              rel_error(on_gpu.data(), ref, n));
}

TEST_P(CudaModel, Fp32EveryGradientMatchesCpu) {
  const Batch b = golden_batch(*forward_);
  for (bool checkpointing : {false, true}) {
    auto cm = make_model(*cpu_, checkpointing), gm = make_model(*gpu_, checkpointing);
    cm->zero_grads(), gm->zero_grads();
    const float scale = 1.0f / float(b.num_targets());
    const double lc = cm->forward_backward(b, scale), lg = gm->forward_backward(b, scale);
    EXPECT_NEAR(lg, lc, 1e-5 * std::fabs(lc));
    const size_t n = cm->num_params();
    const std::vector<float> gc = to_host(*cpu_, cm->grads(), n),
                             gg = to_host(*gpu_, gm->grads(), n);
    double worst = 0;
    for (const ParamEntry& e : cm->table().entries) {
      const double err = rel_error(gg.data() + e.offset, gc.data() + e.offset, e.numel);
      EXPECT_LT(err, 1e-4) << e.name << (checkpointing ? " (activation checkpointing)" : "");
      worst = std::max(worst, err);
    }
    std::printf("[ reached  ] worst gradient rel error vs cpu %.2e%s\n", worst,
                checkpointing ? " (activation checkpointing)" : "");
  }
}

TEST_P(CudaModel, TenAdamWStepsMatchPyTorchFp32) {
  const nlohmann::json expected = read_json(dir_ + "/train/expected.json");
  Config c = golden_train_config(dir_, temp_dir("cuda_fp32_" + GetParam()));
  c.train.device = "cuda";
  Trainer t(c);
  double worst = 0;
  for (int i = 0; i < 10; ++i) {
    const StepMetrics m = t.step();
    const double ref = expected["losses"][i], ref_norm = expected["grad_norms"][i];
    EXPECT_NEAR(m.loss, ref, 1e-4 * ref) << "step " << i;
    EXPECT_NEAR(m.grad_norm, ref_norm, 1e-4 * ref_norm) << "step " << i;
    worst = std::max(worst, std::fabs(m.loss - ref) / ref);
  }
  std::printf("[ reached  ] step loss rel error vs PyTorch %.2e\n", worst);
}

TEST_P(CudaModel, TenBf16StepsWithin2PercentOfFp32Reference) {
  const nlohmann::json expected = read_json(dir_ + "/train/expected.json");
  Config c = golden_train_config(dir_, temp_dir("cuda_bf16_" + GetParam()));
  c.train.device = "cuda";
  c.train.precision = "bf16";
  Trainer t(c);
  double worst = 0;
  for (int i = 0; i < 10; ++i) {
    const double ref = expected["losses"][i], loss = t.step().loss;
    EXPECT_NEAR(loss, ref, 2e-2 * ref) << "step " << i;
    worst = std::max(worst, std::fabs(loss - ref) / ref);
  }
  std::printf("[ reached  ] bf16 step loss rel error vs fp32 PyTorch %.2e\n", worst);
}

// "Cuda/" first, so the GPU check's --gtest_filter=Cuda* selects these too.
INSTANTIATE_TEST_SUITE_P(Cuda, CudaModel, ::testing::ValuesIn(golden_cases()));

TEST(CudaStories260K, GreedyFromBosEqualsLlama2c) {
  LATHE_REQUIRE_CUDA();
  const std::string dir = gen_test::stories_dir();
  const std::vector<int32_t> want =
      read_json(dir + "/expected_greedy_ids.json").at("generated_ids").get<std::vector<int32_t>>();
  ASSERT_EQ(want.size(), 200u);
  auto be = make_backend("cuda", 0);
  LlamaModel model(llama_config_from_json_file(dir + "/config.json"), *be, Precision::FP32, false);
  model.load(SafetensorsModel(dir));
  const auto tok = Tokenizer::load(dir);
  Generator g(model, *be, tok.get());
  GenerationOptions o;
  o.max_new_tokens = 200;
  const std::vector<Generated> out = g.generate({{tok->bos_id()}}, o);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tokens, want);
  size_t same = 0;
  while (same < std::min(out[0].tokens.size(), want.size()) && out[0].tokens[same] == want[same])
    ++same;
  std::printf("[ reached  ] %zu/200 ids equal to llama2.c's\n", same);
}

// ---- through the real binary ----

struct ShellRun {
  int status;
  std::string output;
};

ShellRun sh(const std::string& cmd) {
  const testing::CommandResult r = testing::run_command(cmd + " 2>&1");
  return {r.status, r.out};
}

// $LATHE_BINARY, where set, replaces the build's binary (a bundle: gpu_check.sh).
std::string lathe_binary() {
  const char* env = std::getenv("LATHE_BINARY");
  return env && *env ? env : LATHE_BINARY;
}

std::vector<double> losses_of(const std::string& out_dir) {
  std::vector<double> l;
  std::ifstream f(out_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line))
    if (auto j = nlohmann::json::parse(line); j.contains("loss") && j.contains("step"))
      l.push_back(j["loss"]);
  return l;
}

// Four fp32 steps of the tiny golden model, a checkpoint after step 2 (and 4).
ShellRun train(const std::string& device, const std::string& out_dir, bool resume = false) {
  const std::string golden = golden_dir("gqa_untied");
  return sh(lathe_binary() + " train /dev/null model.path=" + golden +
            "/model data.train=" + golden +
            "/train/data.jsonl data.seq_len=24 train.batch_size=2 train.threads=2 train.lr=1e-3 "
            "train.precision=fp32 train.max_steps=4 output.save_every=2 train.device=" +
            device + " output.dir=" + out_dir + (resume ? " train.resume=true" : ""));
}

// A new output folder holding only `from`'s step-2 checkpoint.
std::string with_step2_checkpoint(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::create_directories(to + "/checkpoints");
  fs::copy(from + "/checkpoints/step_00000002", to + "/checkpoints/step_00000002",
           fs::copy_options::recursive);
  return to;
}

void expect_losses_near(const std::vector<double>& got, const std::vector<double>& want,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-4 * std::fabs(want[i])) << what << ", loss " << i;
}

TEST(CudaTrainCli, CudaMatchesCpuAndCheckpointsMoveBetweenDevices) {
  LATHE_REQUIRE_CUDA();
  const std::string dir = temp_dir("cuda_train_cli");
  ShellRun cpu = train("cpu", dir + "/cpu"), gpu = train("cuda", dir + "/cuda");
  ASSERT_EQ(cpu.status, 0) << cpu.output;
  ASSERT_EQ(gpu.status, 0) << gpu.output;
  const std::vector<double> lc = losses_of(dir + "/cpu"), lg = losses_of(dir + "/cuda");
  ASSERT_EQ(lc.size(), 4u) << cpu.output;
  expect_losses_near(lg, lc, "train.device=cuda vs cpu");
  const std::vector<double> tail(lc.begin() + 2, lc.end());  // the uninterrupted steps 3, 4

  // Saved on the GPU, resumed on the CPU, and the other way round.
  const std::string g2c = with_step2_checkpoint(dir + "/cuda", dir + "/cuda_to_cpu");
  ShellRun r1 = train("cpu", g2c, true);
  ASSERT_EQ(r1.status, 0) << r1.output;
  EXPECT_NE(r1.output.find("resumed from"), std::string::npos) << r1.output;
  expect_losses_near(losses_of(g2c), tail, "saved on cuda, resumed on cpu");
  const std::string c2g = with_step2_checkpoint(dir + "/cpu", dir + "/cpu_to_cuda");
  ShellRun r2 = train("cuda", c2g, true);
  ASSERT_EQ(r2.status, 0) << r2.output;
  EXPECT_NE(r2.output.find("resumed from"), std::string::npos) << r2.output;
  expect_losses_near(losses_of(c2g), tail, "saved on cpu, resumed on cuda");
  std::printf("[ reached  ] cpu losses %.6f %.6f %.6f %.6f; cuda %.6f %.6f %.6f %.6f\n", lc[0],
              lc[1], lc[2], lc[3], lg[0], lg[1], lg[2], lg[3]);
}

}  // namespace
}  // namespace lathe
