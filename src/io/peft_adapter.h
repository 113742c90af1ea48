// LoRA adapters in PEFT's layout, so `peft.PeftModel.from_pretrained(base, dir)` loads what
// lathe writes and lathe continues from adapters trained elsewhere:
//   adapter_config.json        {"peft_type": "LORA", "r", "lora_alpha", "target_modules", ...}
//   adapter_model.safetensors  base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight [r, in]
//                              ...lora_B.weight [out, r]
#pragma once
#include <string>

#include "core/dtype.h"
#include "model/llama_config.h"
#include "model/lora.h"

namespace lathe {

// Writes <dir>/adapter_config.json and adapter_model.safetensors (into <dir>.tmp, renamed
// when complete). base_model: recorded as base_model_name_or_path.
void save_peft_adapter(const std::string& dir, const LoraTable& table, const float* params,
                       DType dtype, const std::string& base_model);
// The same file from params in backend memory, streamed through a bounded host buffer
// (io/staged_tensor.h) rather than a host copy of the whole adapter.
class Backend;
void save_peft_adapter(const std::string& dir, const LoraTable& table, Backend& be,
                       const float* params, DType dtype, const std::string& base_model);

// Reads adapter_config.json; errors name the file and key. Options lathe does not
// implement (DoRA, rsLoRA, biases, per-module ranks, modules_to_save) are refused by name.
LoraSpec read_peft_config(const std::string& dir);

// Fills params (laid out by table) from adapter_model.safetensors; every adapter tensor of
// the table must be present with its shape, and no tensor may be left unused.
void load_peft_weights(const std::string& dir, const LoraTable& table, float* params);

}  // namespace lathe
