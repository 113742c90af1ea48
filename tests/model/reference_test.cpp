// The engine against the independent PyTorch reference: logits, loss and every
// parameter gradient of tiny random Llamas (GQA/MHA, tied/untied, llama3 RoPE scaling).
#include <gtest/gtest.h>

#include <cstdio>

#include "backend/backend.h"
#include "model/golden.h"
#include "model/llama.h"

namespace lathe {
namespace {

using namespace lathe::testing;

class ReferenceModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = golden_dir(GetParam());
    cfg_ = llama_config_from_json_file(dir_ + "/model/config.json");
    be_ = make_cpu_backend(2);
    weights_ = std::make_unique<SafetensorsModel>(dir_ + "/model");
    forward_ = std::make_unique<SafetensorsFile>(dir_ + "/forward.safetensors");
  }
  std::unique_ptr<LlamaModel> make_model(Precision p, bool checkpointing = false) {
    auto m = std::make_unique<LlamaModel>(cfg_, *be_, p, checkpointing);
    m->load(*weights_);
    return m;
  }
  const float* ref(const std::string& name) {
    const TensorInfo* t = forward_->find(name);
    EXPECT_NE(t, nullptr) << name;
    return static_cast<const float*>(t->data);
  }
  std::string dir_;
  LlamaConfig cfg_;
  std::unique_ptr<Backend> be_;
  std::unique_ptr<SafetensorsModel> weights_;
  std::unique_ptr<SafetensorsFile> forward_;
};

TEST_P(ReferenceModel, LogitsAndLossMatchFp32) {
  auto model = make_model(Precision::FP32);
  const Batch b = golden_batch(*forward_);
  std::vector<float> logits(size_t(b.B * b.T * cfg_.vocab_size));
  const double loss = model->forward(b, logits.data()) / double(b.num_targets());
  const double err = rel_error(logits.data(), ref("logits"), logits.size());
  EXPECT_LT(err, 1e-5);
  EXPECT_NEAR(loss, ref("loss")[0], 1e-5 * std::fabs(ref("loss")[0]));
  // The evaluation path (no logits buffer: chunked loss) gives the same loss.
  const double chunked = model->forward(b, nullptr) / double(b.num_targets());
  EXPECT_NEAR(chunked, ref("loss")[0], 1e-5 * std::fabs(ref("loss")[0]));
  std::printf("[ reached  ] logits rel error %.2e, loss rel error %.2e\n", err,
              std::fabs(loss - ref("loss")[0]) / ref("loss")[0]);
}

TEST_P(ReferenceModel, EveryGradientMatchesFp32) {
  for (bool checkpointing : {false, true}) {
    auto model = make_model(Precision::FP32, checkpointing);
    const Batch b = golden_batch(*forward_);
    model->zero_grads();
    const double loss =
        model->forward_backward(b, 1.0f / float(b.num_targets())) / double(b.num_targets());
    EXPECT_NEAR(loss, ref("loss")[0], 1e-5 * std::fabs(ref("loss")[0]));
    double worst = 0;
    for (const ParamEntry& e : model->table().entries) {
      const double err = rel_error(model->grads() + e.offset, ref("grad." + e.name), e.numel);
      EXPECT_LT(err, 1e-4) << e.name << (checkpointing ? " (activation checkpointing)" : "");
      worst = std::max(worst, err);
    }
    std::printf("[ reached  ] worst gradient rel error %.2e%s\n", worst,
                checkpointing ? " (activation checkpointing)" : "");
  }
}

TEST_P(ReferenceModel, Bf16LogitsCloseToFp32Reference) {
  auto model = make_model(Precision::BF16);
  const Batch b = golden_batch(*forward_);
  std::vector<float> logits(size_t(b.B * b.T * cfg_.vocab_size));
  const double loss = model->forward(b, logits.data()) / double(b.num_targets());
  // bf16 keeps 8 mantissa bits: ~0.4% per rounding, a few percent through the network.
  EXPECT_LT(rel_error(logits.data(), ref("logits"), logits.size()), 5e-2);
  EXPECT_NEAR(loss, ref("loss")[0], 1e-2 * std::fabs(ref("loss")[0]));
}

INSTANTIATE_TEST_SUITE_P(Golden, ReferenceModel, ::testing::ValuesIn(golden_cases()));

}  // namespace
}  // namespace lathe
