// The model a config describes: the HF folder's weights in train.precision, and with
// peft.method a frozen base (peft.base_dtype) plus LoRA adapters, read from peft.adapter or
// freshly initialized (PEFT's init, seeded by train.seed). Shared by train and eval.
#pragma once
#include <memory>
#include <optional>

#include "model/llama.h"
#include "train/config.h"

namespace lathe {

// peft.* as the model's adapter setup (none without peft.method); with peft.adapter the
// adapter's own config decides r, alpha and the targets.
std::optional<AdapterSetup> adapter_setup(const Config& cfg);

// mc: the model folder's config, its vocabulary possibly grown by added special tokens
// (grown_vocab: new rows start at the mean of the stored ones).
// shard: full_shard's range of this process (null: the whole model); with peft.method
// only its worker is used, to split the frozen base's layers over the processes.
std::unique_ptr<LlamaModel> load_model(const Config& cfg, const LlamaConfig& mc, Backend& be,
                                       bool grown_vocab, const ParamShard* shard = nullptr);

}  // namespace lathe
