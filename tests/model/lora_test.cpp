// LoRA against the PyTorch reference (tests/reference/llama_ref.py wraps every projection
// of each tiny model in y = base(x) + (alpha/r)·x·Aᵀ·Bᵀ with random A and B, and writes the
// adapter in PEFT's layout): logits, loss and every adapter gradient; ten AdamW steps that
// train only the adapters; merging; frozen-base storage (bf16, NF4) and dropout.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "backend/backend.h"
#include "io/peft_adapter.h"
#include "model/golden.h"
#include "model/llama.h"
#include "model/lora_merge.h"
#include "model/nf4.h"
#include "train/trainer.h"

namespace lathe {
namespace {

using namespace lathe::testing;

struct LoraModel {
  std::unique_ptr<Backend> be = make_cpu_backend(2);
  std::unique_ptr<LlamaModel> model;
};

// The case's base model with the reference's adapter, stored as `dtype`.
LoraModel load_lora(const std::string& dir, BaseDtype dtype, Precision precision = Precision::FP32,
                    double dropout = 0) {
  LoraModel m;
  const LlamaConfig cfg = llama_config_from_json_file(dir + "/model/config.json");
  AdapterSetup a;
  a.lora = read_peft_config(dir + "/lora/adapter");
  a.lora.dropout = dropout;
  a.base_dtype = dtype;
  m.model = std::make_unique<LlamaModel>(cfg, *m.be, precision, false, &a);
  m.model->load(SafetensorsModel(dir + "/model"));
  load_peft_weights(dir + "/lora/adapter", m.model->lora_table(), m.model->lora_params());
  m.model->refresh_compute_weights();
  return m;
}

std::vector<float> logits_of(LlamaModel& model, const Batch& b, double* loss) {
  std::vector<float> logits(size_t(b.B * b.T * model.config().vocab_size));
  *loss = model.forward(b, logits.data()) / double(b.num_targets());
  return logits;
}

class LoraReference : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraReference, LogitsLossAndEveryAdapterGradientMatch) {
  const std::string dir = golden_dir(GetParam());
  LoraModel m = load_lora(dir, BaseDtype::F32);
  SafetensorsFile in(dir + "/forward.safetensors"), ref(dir + "/lora/forward.safetensors");
  const Batch b = golden_batch(in);
  double loss = 0;
  const std::vector<float> logits = logits_of(*m.model, b, &loss);
  const TensorInfo* ref_logits = ref.find("logits");
  const double logit_err =
      rel_error(logits.data(), static_cast<const float*>(ref_logits->data), logits.size());
  EXPECT_LT(logit_err, 1e-4);
  const double ref_loss = *static_cast<const float*>(ref.find("loss")->data);
  EXPECT_NEAR(loss, ref_loss, 1e-5 * ref_loss);

  m.model->zero_grads();
  const double sum = m.model->forward_backward(b, 1.0f / float(b.num_targets()));
  EXPECT_NEAR(sum / double(b.num_targets()), ref_loss, 1e-5 * ref_loss);
  const TrainableParams t = m.model->trainable();
  double worst = 0;
  int checked = 0;
  bool seen[kNumProj] = {};
  for (const LoraEntry& e : m.model->lora_table().entries) {
    for (auto [name, offset, n] : {std::tuple{e.a_name(), e.a_offset, size_t(m.model->lora_table().spec.r * e.in)},
                                   std::tuple{e.b_name(), e.b_offset, size_t(e.out * m.model->lora_table().spec.r)}}) {
      const TensorInfo* g = ref.find("grad." + name);
      ASSERT_NE(g, nullptr) << name;
      const double err = rel_error(t.grads + offset, static_cast<const float*>(g->data), n);
      EXPECT_LT(err, 1e-4) << name;
      worst = std::max(worst, err);
      ++checked;
    }
    seen[int(e.proj)] = true;
  }
  for (int p = 0; p < kNumProj; ++p) EXPECT_TRUE(seen[p]) << proj_name(Proj(p));
  std::printf("[ reached  ] logits rel error %.2e, %d adapter gradients worst rel error %.2e\n",
              logit_err, checked, worst);
}

TEST_P(LoraReference, TenAdapterStepsMatchFp32) {
  const std::string dir = golden_dir(GetParam());
  const nlohmann::json expected = read_json(dir + "/lora/expected.json");
  Config c = golden_train_config(dir, temp_dir("lora_ref_" + GetParam()));
  c.peft.method = "lora";
  c.peft.base_dtype = "fp32";
  c.peft.dropout = 0;
  c.peft.adapter = dir + "/lora/adapter";
  Trainer t(c);
  ASSERT_TRUE(t.model().has_adapters());
  double worst_loss = 0;
  for (int i = 0; i < 10; ++i) {
    const StepMetrics s = t.step();
    const double ref_loss = expected["losses"][i], ref_norm = expected["grad_norms"][i];
    EXPECT_NEAR(s.loss, ref_loss, 1e-4 * ref_loss) << "step " << i;
    EXPECT_NEAR(s.grad_norm, ref_norm, 1e-4 * ref_norm) << "step " << i;
    worst_loss = std::max(worst_loss, std::fabs(s.loss - ref_loss) / ref_loss);
  }
  SafetensorsFile final_ref(dir + "/lora/final.safetensors");
  double worst = 0;
  const LoraTable& table = t.model().lora_table();
  for (const LoraEntry& e : table.entries) {
    const TensorInfo* a = final_ref.find(e.a_name());
    const TensorInfo* b = final_ref.find(e.b_name());
    ASSERT_TRUE(a && b) << e.a_name();
    const double ea = rel_error(t.model().lora_params() + e.a_offset,
                                static_cast<const float*>(a->data), size_t(a->numel()));
    const double eb = rel_error(t.model().lora_params() + e.b_offset,
                                static_cast<const float*>(b->data), size_t(b->numel()));
    EXPECT_LT(ea, 1e-4) << e.a_name();
    EXPECT_LT(eb, 1e-4) << e.b_name();
    worst = std::max({worst, ea, eb});
  }
  std::printf("[ reached  ] LoRA step loss rel error %.2e, final adapter rel error %.2e\n",
              worst_loss, worst);
}

TEST_P(LoraReference, MergedModelGivesTheAdaptedLogits) {
  const std::string dir = golden_dir(GetParam());
  LoraModel adapted = load_lora(dir, BaseDtype::F32);
  SafetensorsFile in(dir + "/forward.safetensors");
  const Batch b = golden_batch(in);
  double l1 = 0, l2 = 0;
  const std::vector<float> want = logits_of(*adapted.model, b, &l1);

  auto be = make_cpu_backend(2);
  const LlamaConfig cfg = llama_config_from_json_file(dir + "/model/config.json");
  LlamaModel full(cfg, *be, Precision::FP32, false);
  full.load(SafetensorsModel(dir + "/model"));
  merge_lora(full, adapted.model->lora_table(), adapted.model->lora_params());
  const std::vector<float> got = logits_of(full, b, &l2);
  const double err = rel_error(got.data(), want.data(), got.size());
  EXPECT_LT(err, 1e-4);
  std::printf("[ reached  ] merged vs base+adapter logits rel error %.2e\n", err);
}

INSTANTIATE_TEST_SUITE_P(Golden, LoraReference, ::testing::ValuesIn(golden_cases()));

TEST(Lora, Bf16AndNf4BasesStayCloseToFp32) {
  const std::string dir = golden_dir("gqa_untied");
  SafetensorsFile in(dir + "/forward.safetensors");
  const Batch b = golden_batch(in);
  double ref = 0, bf16 = 0, nf4 = 0, nf4dq = 0;
  LoraModel f = load_lora(dir, BaseDtype::F32);
  logits_of(*f.model, b, &ref);
  LoraModel h = load_lora(dir, BaseDtype::BF16);
  logits_of(*h.model, b, &bf16);
  LoraModel q = load_lora(dir, BaseDtype::NF4);
  logits_of(*q.model, b, &nf4);
  EXPECT_NEAR(bf16, ref, 1e-3 * ref);
  EXPECT_NE(nf4, ref);  // quantization does change the weights...
  EXPECT_NEAR(nf4, ref, 2e-2 * ref);  // ...by NF4's error, not more
  {
    const LlamaConfig cfg = llama_config_from_json_file(dir + "/model/config.json");
    auto be = make_cpu_backend(2);
    AdapterSetup a;
    a.lora = read_peft_config(dir + "/lora/adapter");
    a.base_dtype = BaseDtype::NF4;
    a.double_quant = true;
    LlamaModel m(cfg, *be, Precision::FP32, false, &a);
    m.load(SafetensorsModel(dir + "/model"));
    load_peft_weights(dir + "/lora/adapter", m.lora_table(), m.lora_params());
    logits_of(m, b, &nf4dq);
    const FrozenBaseBytes single = q.model->frozen_base()->bytes();
    const FrozenBaseBytes dbl = m.frozen_base()->bytes();
    const double bpp1 = double(single.linear) / double(single.linear_params);
    const double bpp2 = double(dbl.linear) / double(dbl.linear_params);
    EXPECT_NEAR(bpp1, 0.5 + 4.0 / 64, 1e-3);  // 4 bits + one fp32 scale per 64
    EXPECT_LT(bpp2, 0.52);
    std::printf("[ reached  ] loss fp32 base %.6f, bf16 %.6f, nf4 %.6f, nf4+double quant %.6f; "
                "nf4 %.4f bytes/param, with double quant %.4f\n", ref, bf16, nf4, nf4dq, bpp1, bpp2);
  }
  EXPECT_NEAR(nf4dq, nf4, 2e-3 * nf4);
}

TEST(Lora, Nf4RoundTripPicksTheNearestCode) {
  std::vector<float> w(1000);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(float(i) * 0.37f) * (1.0f + float(i % 64) / 32);
  const Nf4Tensor q = quantize_nf4(w.data(), w.size());
  auto be = make_cpu_backend(1);
  std::vector<float> back(w.size());
  be->dequantize_nf4(back.data(), q.codes.data(), q.absmax.data(), w.size(), kNf4Block);
  for (size_t i = 0; i < w.size(); ++i) {
    const float s = q.absmax[i / kNf4Block];
    // No other code is closer to the original than the one chosen.
    for (float c : kNf4Values) EXPECT_LE(std::fabs(back[i] - w[i]), std::fabs(c * s - w[i]) + 1e-6f) << i;
  }
  // The block's largest magnitude is exact (code ±1).
  auto amax = [](const std::vector<float>& v) {
    float m = 0;
    for (size_t i = 0; i < 64; ++i) m = std::max(m, std::fabs(v[i]));
    return m;
  };
  EXPECT_FLOAT_EQ(amax(back), amax(w));
}

TEST(Lora, DropoutGradientsMatchFiniteDifferences) {
  const std::string dir = golden_dir("mha_tied");
  LoraModel m = load_lora(dir, BaseDtype::F32, Precision::FP32, 0.3);
  SafetensorsFile in(dir + "/forward.safetensors");
  const Batch b = golden_batch(in);
  m.model->set_dropout_seed(77);
  m.model->zero_grads();
  const double base_loss = m.model->forward_backward(b, 1.0f);
  const TrainableParams t = m.model->trainable();
  std::vector<float> grads(t.grads, t.grads + t.n);
  // Without dropout the loss differs: the mask is really applied.
  {
    LoraModel plain = load_lora(dir, BaseDtype::F32);
    plain.model->zero_grads();
    EXPECT_GT(std::fabs(plain.model->forward_backward(b, 1.0f) - base_loss), 1e-3);
  }
  // Central differences of the summed loss (the same mask each time), for a spread of
  // adapter entries including A and B of the first and last projections.
  const double h = 1e-2;
  int checked = 0;
  for (size_t i = 0; i < t.n; i += t.n / 23) {
    const float orig = t.params[i];
    t.params[i] = float(orig + h);
    m.model->zero_grads();
    const double up = m.model->forward_backward(b, 1.0f);
    t.params[i] = float(orig - h);
    m.model->zero_grads();
    const double down = m.model->forward_backward(b, 1.0f);
    t.params[i] = orig;
    const double fd = (up - down) / (2 * h);
    EXPECT_NEAR(grads[i], fd, 2e-2 * std::max(1.0, std::fabs(fd))) << "entry " << i;
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

TEST(Lora, FrozenBaseHasNoGradientsOrOptimizerState) {
  const std::string dir = golden_dir("gqa_untied");
  LoraModel m = load_lora(dir, BaseDtype::BF16);
  EXPECT_EQ(m.model->params(), nullptr);
  EXPECT_EQ(m.model->grads(), nullptr);
  EXPECT_EQ(m.model->trainable().n, m.model->lora_table().total);
  EXPECT_LT(m.model->trainable().n * 10, m.model->num_params());
}

}  // namespace
}  // namespace lathe
