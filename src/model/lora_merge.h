// Folds trained adapters into a full model: W ← W + (alpha/r)·B·A for every adapted
// projection, so the result is a plain HF model that needs no PEFT at inference.
#pragma once
#include "model/llama.h"
#include "model/lora.h"

namespace lathe {

// `model` must be a full (not frozen) model; `adapter` holds table.total floats.
void merge_lora(LlamaModel& model, const LoraTable& table, const float* adapter);

}  // namespace lathe
