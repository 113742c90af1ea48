// Code above the seam must reach backend memory only through the backend (copy, kernels),
// as a GPU requires. Each test runs the same work on the CPU backend and on StrictBackend
// (CPU kernels on memory the host cannot touch) and requires identical results, bit for
// bit: training (fp32, bf16, LoRA, QLoRA) with evaluation, checkpoints, resume and the
// final export; full-logits forward; generation through the KV cache.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "backend/strict_backend.h"
#include "generate/generate_test_util.h"
#include "generate/generator.h"
#include "io/safetensors.h"
#include "model/golden.h"
#include "train/trainer.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using namespace lathe::testing;

std::unique_ptr<Backend> strict_cpu() {
  install_host_access_trap();
  return std::make_unique<StrictBackend>(make_cpu_backend(2));
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Every .safetensors file under dir (relative path -> bytes).
std::map<std::string, std::string> tensor_files(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().extension() == ".safetensors")
      out[fs::relative(e.path(), dir).string()] = read_bytes(e.path());
  return out;
}

// The numbers of metrics.jsonl that must not depend on where memory lives (not timings).
std::vector<std::string> logged_values(const fs::path& dir) {
  std::vector<std::string> out;
  std::ifstream f(dir / "metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    std::string v;
    for (const char* k : {"step", "loss", "grad_norm", "lr", "eval_loss"})
      if (j.contains(k)) v += std::string(k) + "=" + j[k].dump() + " ";
    out.push_back(v);
  }
  return out;
}

// Lowers the bound on what a save stages in host memory, for one test.
struct StagingBytes {
  explicit StagingBytes(size_t n) : old(safetensors_staging_bytes()) {
    safetensors_staging_bytes() = n;
  }
  ~StagingBytes() { safetensors_staging_bytes() = old; }
  size_t old;
};

// The staging bound of the tests below: not a multiple of any tensor's size, so every
// tensor above it is written in several pieces, the last one short (1000 → 992 bytes).
constexpr size_t kStaging = 1000;

// Trains `steps` steps with an evaluation and a checkpoint every 2, on both backends, then
// resumes both for 2 more; the logs and every saved tensor file must be identical, though
// the strict backend's saves stream through a small host buffer (the CPU's write fp32 in
// place), and no save reads back more than that buffer holds.
void expect_same_training(Config c, const std::string& name) {
  const StagingBytes staging(kStaging);
  c.data.eval = c.data.train;
  c.train.eval_every = 2;
  c.train.max_steps = 4;
  c.output.save_every = 2;
  c.output.keep_last = 5;
  const std::string plain_dir = temp_dir("host_access_cpu_" + name);
  const std::string strict_dir = temp_dir("host_access_strict_" + name);
  for (int phase = 0; phase < 2; ++phase) {
    if (phase == 1) c.train.resume = "true", c.train.max_steps = 6;
    c.output.dir = plain_dir;
    Trainer(c).run();
    c.output.dir = strict_dir;
    auto be = strict_cpu();
    auto* strict = static_cast<StrictBackend*>(be.get());
    Trainer t(c, std::move(be));
    strict->reset_largest_read_back();
    t.run();
    EXPECT_LE(strict->largest_read_back(), kStaging) << "phase " << phase;
  }
  const std::vector<std::string> plain = logged_values(plain_dir);
  ASSERT_GE(plain.size(), 6u);
  EXPECT_EQ(logged_values(strict_dir), plain);
  const auto want = tensor_files(plain_dir), got = tensor_files(strict_dir);
  ASSERT_GE(want.size(), 2u);  // checkpoints and the final model or adapter
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [path, bytes] : want) EXPECT_TRUE(got.at(path) == bytes) << path;
}

TEST(HostAccess, TrainingFp32MatchesCpu) {
  expect_same_training(golden_train_config(golden_dir("gqa_untied"), ""), "fp32");
}

TEST(HostAccess, TrainingBf16MatchesCpu) {
  Config c = golden_train_config(golden_dir("mha_tied"), "");
  c.train.precision = "bf16";
  expect_same_training(c, "bf16");
}

TEST(HostAccess, LoraTrainingMatchesCpu) {
  Config c = golden_train_config(golden_dir("gqa_untied"), "");
  c.peft.method = "lora";
  c.peft.target_modules = {"all-linear"};
  expect_same_training(c, "lora");
}

TEST(HostAccess, QloraTrainingMatchesCpu) {
  Config c = golden_train_config(golden_dir("gqa_untied"), "");
  c.train.precision = "bf16";
  c.peft.method = "qlora";
  c.peft.double_quant = true;
  expect_same_training(c, "qlora");
}

TEST(HostAccess, ForwardLogitsAndGenerationMatchCpu) {
  const std::string dir = gen_test::stories_dir();
  auto run = [&](std::unique_ptr<Backend> be, std::vector<float>* logits) {
    const LlamaConfig cfg = llama_config_from_json_file(dir + "/config.json");
    LlamaModel model(cfg, *be, Precision::BF16, false);
    model.load(SafetensorsModel(dir));
    Batch b;
    b.B = 1, b.T = 8;
    b.input_ids = {1, 20, 30, 40, 50, 60, 70, 80};
    b.targets = {20, 30, 40, 50, 60, 70, 80, -100};
    logits->resize(size_t(b.T * cfg.vocab_size));
    const double loss = model.forward(b, logits->data());
    logits->push_back(float(loss));
    Generator g(model, *be, nullptr);
    GenerationOptions o;
    o.max_new_tokens = 12;
    o.batch_size = 2;
    std::vector<std::vector<int32_t>> out;
    for (const Generated& r : g.generate({{1, 20, 30}, {1, 44, 55, 66, 77}, {1, 9}}, o))
      out.push_back(r.tokens);
    return out;
  };
  std::vector<float> want_logits, got_logits;
  const auto want = run(make_cpu_backend(2), &want_logits);
  const auto got = run(strict_cpu(), &got_logits);
  EXPECT_EQ(got, want);
  EXPECT_TRUE(got_logits == want_logits);
}

// The checks above can fail: a host access is caught, and host memory given to a kernel.
TEST(HostAccessDeathTest, HostTouchingBackendMemoryIsCaught) {
  // The child runs the statement in a fresh process: no OpenMP team inherited by fork.
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        auto be = strict_cpu();
        float* p = static_cast<float*>(be->alloc(64));
        p[0] = 1.0f;  // what a GPU would not allow
      },
      "host code touched backend memory");
  auto be = strict_cpu();
  std::vector<float> host(16);
  EXPECT_THROW(be->zero(host.data(), 64), Error);
  float* dev = static_cast<float*>(be->alloc(64));
  be->copy(dev, host.data(), 64);  // copy may take host memory
  be->free(dev);
}

}  // namespace
}  // namespace lathe
