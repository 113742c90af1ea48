#include "train/model_loader.h"

#include <cstdio>
#include <string>
#include <vector>

#include "backend/host_staging.h"
#include "core/error.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"

namespace lathe {
namespace {

std::string join_names(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

// peft.* as the model's adapter setup; with peft.adapter the adapter's own config rules.
std::optional<AdapterSetup> adapter_setup(const Config& cfg) {
  if (cfg.peft.method == "none") return std::nullopt;
  AdapterSetup a;
  if (!cfg.peft.adapter.empty()) {
    a.lora = read_peft_config(cfg.peft.adapter);
    std::fprintf(stderr, "peft.adapter %s: r=%lld alpha=%g targets=%zu (its config replaces peft.r, "
                 "peft.alpha, peft.target_modules)\n", cfg.peft.adapter.c_str(),
                 static_cast<long long>(a.lora.r), a.lora.alpha, a.lora.targets.size());
    a.lora.dropout = cfg.peft.dropout;
  } else {
    a.lora.r = cfg.peft.r;
    a.lora.alpha = cfg.peft.alpha;
    a.lora.dropout = cfg.peft.dropout;
    a.lora.targets = parse_lora_targets(cfg.peft.target_modules);
  }
  std::string dtype = cfg.peft.base_dtype;
  if (dtype.empty()) dtype = cfg.peft.method == "qlora" ? "nf4" : cfg.train.precision;
  LATHE_CHECK(cfg.peft.method != "qlora" || dtype == "nf4", "peft.method=qlora stores the base as "
              "nf4, but peft.base_dtype=", dtype, ": use peft.method=lora for a ", dtype, " base");
  a.base_dtype = base_dtype_from_name(dtype);
  a.double_quant = cfg.peft.double_quant;
  return a;
}


std::unique_ptr<LlamaModel> load_model(const Config& cfg, const LlamaConfig& mc, Backend& be,
                                       bool grown_vocab, const ParamShard* shard) {
  const std::optional<AdapterSetup> adapter = adapter_setup(cfg);
  LATHE_CHECK(!(adapter && grown_vocab), "model.special_tokens with peft.method=", cfg.peft.method,
              ": the new embedding rows would stay frozen and untrained; add special tokens in "
              "a full fine-tune (peft.method=none)");
  // With adapters, full_shard splits the frozen base's layers (its worker) instead.
  std::optional<AdapterSetup> setup = adapter;
  if (setup && shard) setup->shard = shard->worker;
  auto model = std::make_unique<LlamaModel>(mc, be, precision_from_name(cfg.train.precision),
                                            cfg.train.activation_checkpointing,
                                            setup ? &*setup : nullptr, setup ? nullptr : shard);
  SafetensorsModel weights(cfg.model.path);
  if (grown_vocab)
    model->load_growing_vocab(weights);
  else
    model->load(weights);
  if (!adapter) return model;
  HostWrite<float> lora(be, model->lora_params(), model->lora_table().total);
  if (!cfg.peft.adapter.empty())
    load_peft_weights(cfg.peft.adapter, model->lora_table(), lora.get());
  else
    init_lora_weights(model->lora_table(), lora.get(), cfg.train.seed);
  lora.commit();
  model->refresh_compute_weights();
  const FrozenBaseBytes fb = model->frozen_base()->bytes();
  std::fprintf(stderr,
               "%s: r=%lld alpha=%g on %s; %zu trainable parameters (%.3f%% of %zu); frozen "
               "base %s: linear layers %.1f MiB (%.3f bytes/parameter%s), embedding, head and "
               "norms %.1f MiB\n",
               cfg.peft.method.c_str(), static_cast<long long>(adapter->lora.r),
               adapter->lora.alpha, join_names(lora_target_names(adapter->lora.targets)).c_str(),
               model->trainable().n,
               100.0 * double(model->trainable().n) / double(model->num_params()),
               model->num_params(), base_dtype_name(adapter->base_dtype),
               double(fb.linear) / 1048576.0,
               double(fb.linear) / double(std::max<size_t>(1, fb.linear_params)),
               model->frozen_base()->sharded() ? ", this process's layers" : "",
               double(fb.other) / 1048576.0);
  return model;
}

}  // namespace lathe
