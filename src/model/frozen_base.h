// The base model of a LoRA/QLoRA run: frozen, so it has no gradients or optimizer state,
// and its linear layers can be stored below fp32 (bf16, or QLoRA's NF4 with block scales).
// Products still run on fp32 kernels: a layer's weights are expanded into one shared
// scratch buffer right before that layer runs (forward, and again for backward), which
// costs a pass over the layer's weights against the many passes its products make.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "model/layer_slots.h"
#include "model/llama_config.h"
#include "model/param_table.h"

namespace lathe {

struct LayerWeights;
struct HeadWeights;
class CommWorker;

enum class BaseDtype { F32, BF16, NF4 };
BaseDtype base_dtype_from_name(const std::string& name);  // fp32 | bf16 | nf4
const char* base_dtype_name(BaseDtype d);

struct FrozenBaseBytes {
  size_t linear = 0;  // the blocks' linear weights (and their scales)
  size_t linear_params = 0;
  size_t other = 0;  // embedding, lm_head, norms (fp32)
};

// full_shard / hybrid_shard with LoRA (`shard` set): the linear weights of layer l live on
// process l % N of the worker's communicator only. When a layer runs, its owner broadcasts
// them (as stored: bf16 or NF4 codes and scales) into one of two slots on the others, the
// next layer's while this one computes; the norms, embedding and head stay replicated.
class FrozenBase {
 public:
  // round_bf16: products read bf16-valued weights (bf16 training), as QLoRA computes in bf16.
  FrozenBase(const LlamaConfig& cfg, const ParamTable& table, Backend& be, BaseDtype dtype,
             bool double_quant, bool round_bf16, CommWorker* shard = nullptr);
  ~FrozenBase();
  FrozenBase(const FrozenBase&) = delete;
  FrozenBase& operator=(const FrozenBase&) = delete;
  bool sharded() const { return worker_ != nullptr; }
  // Starts bringing layer l into its slot; every process must call it for the same layers
  // in the same order (layer() calls it too).
  void prefetch(int64_t l);
  // Stores one tensor of the table (fp32 host values).
  void set(const ParamEntry& e, const float* values);
  // Layer l's weights as products read them: the stored fp32 copy, or a scratch expanded
  // on demand (fp32, or bf16 bits in bf16 training).
  LayerWeights layer(int64_t l);
  HeadWeights head() const;
  FrozenBaseBytes bytes() const;
  BaseDtype dtype() const { return dtype_; }

 private:
  struct Stored {                        // one linear weight in bf16 or NF4
    size_t numel = 0, layer_offset = 0;  // where it expands to inside the layer's slice
    DeviceBuffer<uint16_t> bf16;
    DeviceBuffer<uint8_t> codes;
    DeviceBuffer<float> absmax;      // NF4 scales, or
    DeviceBuffer<uint8_t> absmax_q;  // their 8-bit codes (double quantization)
    DeviceBuffer<float> lo_step;
    size_t blocks = 0;
  };
  bool is_linear(const ParamEntry& e) const;
  int64_t layer_of(size_t offset) const;
  bool owns(int64_t l) const { return !worker_ || l % world_ == rank_; }
  Stored empty_stored(size_t numel, size_t layer_offset);
  // layer() gives bf16 bits: bf16 training on a bf16 or NF4 base.
  bool bits() const { return round_bf16_ && dtype_ != BaseDtype::F32; }

  LlamaConfig cfg_;
  const ParamTable& table_;
  Backend& be_;
  BaseDtype dtype_;
  bool double_quant_, round_bf16_;
  size_t layer_span_ = 0;  // floats from one layer's first tensor to the next layer's
  std::vector<DeviceBuffer<float>> norms_;      // per layer: ln1 | ln2
  std::vector<DeviceBuffer<float>> layer_f32_;  // F32: per-layer slices holding the linears
  std::vector<std::vector<Stored>> stored_;     // per layer, bf16/NF4 linear weights
  DeviceBuffer<float> embed_, final_norm_, lm_head_;
  DeviceBuffer<float> scratch_, absmax_scratch_;
  DeviceBuffer<uint16_t> scratch16_;
  int64_t scratch_layer_ = -1;
  CommWorker* worker_ = nullptr;
  int64_t rank_ = 0, world_ = 1;
  std::vector<Stored> slot_stored_[2];  // a layer received from its owner (bf16 / NF4)
  DeviceBuffer<float> slot_f32_[2];     // the same for an fp32 base
  LayerSlots slots_;
};

}  // namespace lathe
