// Where each Hugging Face tensor lives in lathe's flat parameter buffer.
// Order per layer: input_layernorm, q|k|v (contiguous, so one product computes all
// three), o_proj, post_attention_layernorm, gate|up (contiguous), down_proj. Flat
// buffers let the optimizer, gradient clipping, sharding and checkpoints work on one
// range instead of hundreds of tensors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/llama_config.h"

namespace lathe {

struct ParamEntry {
  std::string name;  // HF name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;
  size_t offset = 0;  // in floats
  size_t numel = 0;
  bool is_matmul_weight = false;  // counts towards N_matmul for MFU
};

struct LayerOffsets {
  size_t ln1, wqkv, wo, ln2, wgu, wd;
};

struct ParamTable {
  std::vector<ParamEntry> entries;
  std::vector<LayerOffsets> layers;
  size_t embed = 0, final_norm = 0, lm_head = 0;  // lm_head == embed when tied
  size_t total = 0;
  const ParamEntry* find(const std::string& name) const;
};

ParamTable make_param_table(const LlamaConfig& cfg);

// Parameters that take part in matrix products per token (for 6·N FLOPs): every linear
// layer and the lm_head, not the embedding lookup or norms.
int64_t matmul_params(const LlamaConfig& cfg);
// Model FLOPs per token of a training step, PaLM convention: 6·N_matmul + 12·L·H·D·T.
double train_flops_per_token(const LlamaConfig& cfg, int64_t seq_len);
// LoRA: the frozen weights need the forward and the input gradient (4·N, no weight
// gradient), the adapters all three (6·N_lora); attention is unchanged.
double lora_train_flops_per_token(const LlamaConfig& cfg, int64_t seq_len, size_t lora_params);

}  // namespace lathe
