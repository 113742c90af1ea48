// LoRA adapters on the block's linear layers: y = x·Wᵀ + (alpha/r)·dropout(x)·Aᵀ·Bᵀ with
// A [r, in] and B [out, r] per adapted projection, PEFT's names and initialization. All
// adapter tensors live in one flat buffer (like the base parameters), so the optimizer,
// clipping and checkpoints treat them as one range.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/llama_config.h"

namespace lathe {

// The seven projections of a Llama block, in PEFT's module names.
enum class Proj { Q, K, V, O, Gate, Up, Down };
constexpr int kNumProj = 7;
const char* proj_name(Proj p);          // "q_proj"
const char* proj_parent(Proj p);        // "self_attn" or "mlp"

struct LoraSpec {
  int64_t r = 8;
  double alpha = 32;
  double dropout = 0;
  std::vector<Proj> targets;  // in Proj order, no repeats
  float scaling() const { return float(alpha / double(r)); }
  bool targets_proj(Proj p) const;
};

// Parses PEFT target names ("q_proj", ..., or "all-linear"); errors list the valid ones.
std::vector<Proj> parse_lora_targets(const std::vector<std::string>& names);
std::vector<std::string> lora_target_names(const std::vector<Proj>& targets);

// One adapted projection of one layer.
struct LoraEntry {
  int64_t layer = 0;
  Proj proj = Proj::Q;
  int64_t in = 0, out = 0;  // the projection's input and output widths
  // Where the projection's output columns sit inside the fused product lathe computes
  // (q|k|v and gate|up are one product each), and that product's width.
  int64_t out_col = 0, fused_out = 0;
  size_t a_offset = 0, b_offset = 0;  // in floats, in the flat adapter buffer
  std::string a_name() const;  // PEFT: base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
  std::string b_name() const;
};

struct LoraTable {
  LoraSpec spec;
  std::vector<LoraEntry> entries;                // layer-major, Proj order within a layer
  std::vector<std::vector<size_t>> by_layer;      // entry indices per layer
  size_t total = 0;                               // floats
};

LoraTable make_lora_table(const LlamaConfig& cfg, const LoraSpec& spec);

// PEFT's default init: A ~ kaiming_uniform(a=√5) = U(-1/√in, 1/√in), B = 0, so training
// starts exactly at the base model.
void init_lora_weights(const LoraTable& t, float* params, uint64_t seed);

}  // namespace lathe
