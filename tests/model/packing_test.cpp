// Packing must be invisible to the model: a row of whole documents gives the same
// per-document losses and gradients as the documents run alone (attention stays inside
// each document and RoPE positions restart), the property packed fine-tuning relies on.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "data/batcher.h"
#include "model/golden.h"
#include "model/llama.h"
#include "train/trainer.h"

namespace lathe {
namespace {

using namespace lathe::testing;

TEST(Packing, PackedRowEqualsDocumentsAloneLossAndEveryGradient) {
  const std::string dir = golden_dir("llama3_rope");
  const LlamaConfig cfg = llama_config_from_json_file(dir + "/model/config.json");
  SafetensorsModel weights(dir + "/model");
  auto be = make_cpu_backend(2);
  LlamaModel packed_model(cfg, *be, Precision::FP32, false), alone_model(cfg, *be, Precision::FP32, false);
  packed_model.load(weights);
  alone_model.load(weights);

  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(cfg.vocab_size - 1));
  std::vector<TokenRow> docs(3);
  const int lengths[] = {7, 5, 9};
  for (int d = 0; d < 3; ++d)
    for (int t = 0; t < lengths[d]; ++t) docs[size_t(d)].input_ids.push_back(tok(rng));
  docs[1].labels = docs[1].input_ids;
  docs[1].labels[1] = -100;  // a masked label inside a packed document stays masked

  const int64_t seq_len = 32;
  const Batch packed = make_packed_batch({{&docs[0], &docs[1], &docs[2]}}, seq_len);
  ASSERT_EQ(packed.T, 21);
  EXPECT_EQ(packed.positions[7], 0);  // second document restarts its positions
  EXPECT_EQ(packed.doc_start[10], 7);
  EXPECT_EQ(packed.doc_start[13], 12);
  EXPECT_EQ(packed.targets[6], -100);  // no target across a document boundary

  packed_model.zero_grads();
  const double packed_loss = packed_model.forward_backward(packed, 1.0f);
  alone_model.zero_grads();
  double alone_loss = 0;
  for (const TokenRow& d : docs) alone_loss += alone_model.forward_backward(make_batch({&d}, seq_len), 1.0f);

  EXPECT_NEAR(packed_loss, alone_loss, 1e-5 * alone_loss);
  for (const ParamEntry& e : packed_model.table().entries)
    EXPECT_LT(rel_error(packed_model.grads() + e.offset, alone_model.grads() + e.offset, e.numel), 1e-5)
        << e.name;
}

TEST(Packing, PackerFillsRowsWithWholeDocumentsAndTrains) {
  const std::string dir = golden_dir("gqa_untied");
  Config c = golden_train_config(dir, temp_dir("packing"));
  c.data.packing = true;
  c.train.max_steps = 0;
  c.train.epochs = 1;
  Trainer t(c);
  // 40 rows of 5..28 tokens (truncated to 24) pack into far fewer rows of 24.
  EXPECT_LT(t.total_steps(), 10);
  const StepMetrics m = t.step();
  EXPECT_GT(m.tokens, 2 * 2 * 12);  // rows are mostly full
  EXPECT_TRUE(std::isfinite(m.loss));
}

}  // namespace
}  // namespace lathe
