// Several LoRA adapters over one base model at inference, kept unmerged so that the rows
// of one batch can each use a different adapter (or none): y += (alpha/r)·x·Aᵀ·Bᵀ on the
// rows that ask for an adapter, after the base product that every row shares. Each
// adapter may have its own rank, alpha and target projections (PEFT folders as
// `lathe train peft.method=lora` writes them, or as PEFT writes them).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "model/llama.h"
#include "model/lora.h"

namespace lathe {

class LoraBank {
 public:
  // The model whose base the adapters extend: its config shapes the tables, and its
  // precision says whether products see bf16-rounded operands (as LlamaModel's own
  // adapters do).
  LoraBank(const LlamaModel& base, Backend& be);

  // Reads a PEFT folder (adapter_config.json, adapter_model.safetensors); returns its
  // index. Errors name the folder and what does not fit the base.
  int add(const std::string& name, const std::string& dir);
  size_t size() const { return adapters_.size(); }
  const std::string& name(size_t i) const { return adapters_[i].name; }
  const std::string& dir(size_t i) const { return adapters_[i].dir; }
  const LoraSpec& spec(size_t i) const { return adapters_[i].table.spec; }

  // For layer l's fused product `which`, whose input x has rows of `in` floats and output
  // y rows of the fused width: adds adapter[m]'s term to row m for every row whose
  // adapter[m] >= 0. Rows of one adapter should be consecutive (each run is one pair of
  // products).
  void apply(int64_t l, Linear which, const float* x, float* y, int64_t M,
             const int32_t* adapter) const;

 private:
  struct Adapter {
    std::string name, dir;
    LoraTable table;
    DeviceBuffer<float> weights;  // the table's flat layout; bf16-rounded in bf16 models
  };
  const LlamaConfig cfg_;
  Backend& be_;
  bool bf16_;
  std::vector<Adapter> adapters_;
  mutable DeviceBuffer<float> u_;  // x·Aᵀ of one run of rows
};

}  // namespace lathe
