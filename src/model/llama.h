// A Llama-family decoder with explicit forward and backward passes (no autograd): the
// block is a fixed sequence of ops, so each op's backward is written beside its forward
// and the activations it needs are kept in plain buffers.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "core/dtype.h"
#include "data/batch.h"
#include "model/frozen_base.h"
#include "model/layer_slots.h"
#include "model/llama_config.h"
#include "model/lora.h"
#include "model/param_table.h"

namespace lathe {

class SafetensorsModel;
struct TensorToWrite;

enum class Precision { FP32, BF16 };
Precision precision_from_name(const std::string& name);

// A weight as products read it: fp32 (bf16 values in a bf16 model) or bf16 bits, dense.
struct Weight {
  const float* f32 = nullptr;
  const uint16_t* bf16 = nullptr;
  const float* packed = nullptr;  // beside either: packed for the backend (MatmulArgs::B_packed)
  Weight() = default;
  Weight(const float* p) : f32(p) {}  // NOLINT: an fp32 matrix is a weight as it is
  static Weight bits(const uint16_t* p) {
    Weight w;
    w.bf16 = p;
    return w;
  }
};

// The device weights one layer reads: fp32 norms and the (fused) linear weights in HF
// layout, q|k|v rows [(H+2KV)·D, C], gate|up rows [2I, C], o [C, H·D], down [C, I].
struct LayerWeights {
  const float* ln1;
  Weight wqkv, wo;
  const float* ln2;
  Weight wgu, wd;
};
// The fused linear layers of a block, in the order a forward pass applies them.
enum class Linear { QKV, O, GateUp, Down };
Linear linear_of(Proj p);  // the fused product a projection is part of

struct HeadWeights {
  const float *embed, *final_norm;
  Weight lm_head;  // the embedding table when tied (as products read it)
};

// LoRA training: the base is frozen (stored as base_dtype, no gradients, no optimizer
// state) and only the adapters train.
class CommWorker;

struct AdapterSetup {
  LoraSpec lora;
  BaseDtype base_dtype = BaseDtype::BF16;
  bool double_quant = false;
  CommWorker* shard = nullptr;  // full_shard: the frozen base's layers split over its processes
};

// full_shard (ZeRO-3): this process keeps only [begin, begin + count) of the flat
// parameters and their gradients; a layer's weights are gathered from all processes when
// it runs (forward, and again for backward), the next layer's while this one computes,
// and its gradients are reduced to their owners while the layer below runs its backward.
// Every collective goes through `worker`, in program order.
struct ParamShard {
  CommWorker* worker = nullptr;
  size_t begin = 0, count = 0;
};

// Called during forward_backward with a range [lo, hi) of trainable().grads that this
// micro-batch will not touch again: data parallel sends it to the other processes while
// the backward goes on. The calls cover the trainable buffer exactly once. A sharded
// model calls it right after queueing the range's reduction to its owners, so work the
// hook queues on the same worker sees the reduced values (hybrid_shard's replicas).
using GradReadyHook = std::function<void(size_t lo, size_t hi)>;

// The parameters an optimizer updates: the whole model, or the LoRA adapters. In bf16
// training the optimizer also writes the copy products read, covering
// [compute_offset, n): bf16 bits (`compute_bits`, the model's weights) or bf16-rounded
// fp32 (`compute`, the adapters, small enough to multiply as fp32).
struct TrainableParams {
  float* params = nullptr;
  float* grads = nullptr;
  size_t n = 0;
  float* compute = nullptr;
  uint16_t* compute_bits = nullptr;
  size_t compute_offset = 0;
};

class LlamaModel {
 public:
  LlamaModel(const LlamaConfig& cfg, Backend& be, Precision precision,
             bool activation_checkpointing, const AdapterSetup* adapter = nullptr,
             const ParamShard* shard = nullptr);

  const LlamaConfig& config() const { return cfg_; }
  Backend& backend() const { return be_; }
  const ParamTable& table() const { return table_; }
  Precision precision() const { return precision_; }
  size_t num_params() const { return table_.total; }

  // LoRA: the adapter layout and its flat fp32 buffer (null / empty without adapters).
  bool has_adapters() const { return frozen_ != nullptr; }
  const LoraTable& lora_table() const { return lora_; }
  float* lora_params() { return lora_params_.get(); }  // backend memory
  const FrozenBase* frozen_base() const { return frozen_.get(); }
  // What the optimizer, clipping and checkpoints work on.
  TrainableParams trainable();
  // Set (or clear, with an empty function) before forward_backward.
  void set_grad_ready_hook(GradReadyHook hook) { grad_ready_ = std::move(hook); }
  // The LoRA dropout mask of the next forward_backward derives from this seed.
  void set_dropout_seed(uint64_t seed) { dropout_seed_ = seed; }

  // fp32 master weights and their gradients (full fine-tuning; null with adapters), in
  // backend memory: the host reaches them through backend/host_staging.h.
  float* params() { return params_.get(); }
  const float* params() const { return params_.get(); }
  float* grads() { return grads_.get(); }
  // bf16 training keeps a bf16 copy (2 bytes a parameter) of the parameters that matrix
  // products read: the flat range [compute_offset(), num_params()), which leaves out the
  // embedding table when it is not tied to the lm_head (a lookup reads the fp32 master).
  size_t compute_offset() const { return compute_offset_; }
  // The weights products read at a flat offset: the master (fp32) or the bf16 copy.
  Weight weight(size_t offset) const {
    return compute_.get() ? Weight::bits(compute_.get() + (offset - compute_offset_))
                          : Weight(params_.get() + offset);
  }

  // Copies every tensor from an HF folder, converting F16/BF16 to fp32; each tensor's
  // name, shape and dtype are checked against the config, errors name file and tensor.
  void load(const SafetensorsModel& weights);
  // The same, for a model whose vocabulary was extended with new tokens: the stored
  // embedding and lm_head may have fewer rows than the config; the missing rows are set to
  // the mean of the stored ones (a neutral start for tokens the model has never seen).
  void load_growing_vocab(const SafetensorsModel& weights);
  // Normal(0, 0.02) linear weights, ones for norms: for benchmarks and tests.
  void init_random(uint64_t seed);
  bool sharded() const { return sharded_; }
  // Whether a forward pass runs collectives (a sharded model or frozen base): then every
  // process must run the same forward passes.
  bool collective_forward() const { return sharded_ || (frozen_ && frozen_->sharded()); }
  ~LlamaModel();
  std::pair<size_t, size_t> shard_range() const { return {shard_.begin, shard_.count}; }
  // Call after params() changed outside the optimizer (load, init, resume, and every
  // update of a sharded model, whose gathered copies then go stale).
  void refresh_compute_weights();
  // HF tensors for saving, as out_dtype. They read the master weights while being written
  // (io/staged_tensor.h): fp32 on the CPU straight from them, anything else converted or
  // copied a bounded piece at a time, so no host copy of the whole model is made. Valid
  // while this model lives and its weights do not change.
  std::vector<TensorToWrite> export_tensors(DType out_dtype) const;

  // What products read for layer l / the embedding and head: bf16-rounded in bf16
  // training. For a frozen quantized base this dequantizes layer l into a scratch buffer,
  // valid until the next call for another layer.
  LayerWeights layer_weights(int64_t l);
  HeadWeights head_weights();
  // Inference: y[M, out] = x[M, in] · Wᵀ (+ y when beta = 1) for layer l's fused linear,
  // adapters included when present. x must already be bf16-rounded in bf16 models.
  // packed: the same weight packed by Backend::pack_weights, or null.
  void linear_forward(int64_t l, Linear which, float* y, const float* x, int64_t M, float beta,
                      const float* packed = nullptr);

  void zero_grads();
  // Forward and backward of sum(CE over targets) * loss_scale; parameter gradients
  // accumulate (+=) so micro-batches add up. Returns the unscaled loss sum.
  double forward_backward(const Batch& batch, float loss_scale);
  // Forward only; returns the summed loss and, if logits != nullptr, fills [B*T, V] of
  // host memory (without, the loss is computed in vocabulary-sized chunks of rows).
  double forward(const Batch& batch, float* logits);

 private:
  void load_impl(const SafetensorsModel& weights, bool allow_vocab_growth);
  void store_frozen(const ParamEntry& e, const float* values);
  // full_shard: the per-process pieces of [lo, hi); queueing its gather into dst (bf16
  // rounding the linear weights in [round_lo, round_hi) when training in bf16), and the sum
  // over the processes of a gradient of [lo, hi), added into this process's part of grads_.
  std::vector<std::pair<size_t, size_t>> pieces(size_t lo, size_t hi) const;
  uint64_t gather(size_t lo, size_t hi, float* dst, std::vector<std::pair<size_t, size_t>> round);
  uint64_t reduce_into_shard(size_t lo, size_t hi, float* grad);
  // Starts gathering layer l into its slot (l % 2) unless it is there or on its way.
  void prefetch_layer(int64_t l);
  void gather_head();
  // Layer l's gradient buffer under full_shard, free once its slot's last reduce is done.
  float* layer_grad_buffer(int64_t l);
  // The adapters' (or the layer's) range in trainable() for grad_ready_.
  std::pair<size_t, size_t> layer_trainable_range(int64_t l) const;
  void grad_ready(size_t lo, size_t hi) {
    if (grad_ready_ && hi > lo) grad_ready_(lo, hi);
  }
  // full_shard: this process's part of a flat range [lo, hi) whose reduction was just
  // queued, as a range of trainable(); hooks queued on the same worker run after it.
  void shard_grad_ready(size_t lo, size_t hi) {
    const size_t a = std::clamp(lo, shard_.begin, shard_.begin + shard_.count);
    const size_t b = std::clamp(hi, shard_.begin, shard_.begin + shard_.count);
    grad_ready(a - shard_.begin, b - shard_.begin);
  }
  struct LayerActs {
    // Saved for the backward. The normalized inputs and the SwiGLU output are not kept:
    // they are recomputed from x_in, x_mid and gate_up (two cheap elementwise passes)
    // to save 3·C + I floats per token per layer.
    DeviceBuffer<float> x_in, rstd1, qkv, att, lse, x_mid, rstd2, gu;
    DeviceBuffer<float> lora_u;  // x·Aᵀ [M, r] of each adapter of the layer
  };
  // Adds the adapters of layer l on the projections that make up `which` to y (the fused
  // product's output, row stride = its width). acts: where to keep x·Aᵀ for backward
  // (null at inference); train: apply dropout.
  void lora_forward(int64_t l, Linear which, const float* x, float* y, int64_t M, LayerActs* acts,
                    bool train);
  // Adapter gradients for `which` from dy (the fused output's gradient, stride ld_dy) and
  // their input x; adds the input gradient into dx.
  void lora_backward(int64_t l, Linear which, const float* x, const float* dy, int64_t ld_dy,
                     float* dx, int64_t M, LayerActs& acts);
  uint64_t dropout_seed(int64_t l, size_t entry) const;
  void ensure_buffers(int64_t B, int64_t T);
  void ensure_rope(int64_t T);
  void upload_batch(const Batch& b);
  void layer_forward(int64_t l, LayerActs& a, const float* x_in, float* x_out, bool train);
  void layer_backward(int64_t l, LayerActs& a, const float* x_in, float* dx);
  double head_loss_and_grad(const Batch& b, float loss_scale, float* dxf);
  void matmul_xwT(float* y, const float* x, Weight w, int64_t M, int64_t N, int64_t K, float beta);
  void maybe_round(float* x, size_t n);
  // x itself in fp32; in bf16 a rounded copy (valid until the next call), for an operand
  // whose fp32 values must stay (the residual stream's gradient).
  const float* rounded_operand(const float* x, size_t n);
  void product(MatmulArgs a);  // be_.matmul, flagging bf16 operands in bf16 models

  LlamaConfig cfg_;
  Backend& be_;
  Precision precision_;
  bool checkpointing_;
  ParamTable table_;
  DeviceBuffer<float> params_, grads_;
  DeviceBuffer<uint16_t> compute_;
  size_t compute_offset_ = 0;
  std::unique_ptr<FrozenBase> frozen_;
  bool sharded_ = false;
  ParamShard shard_;
  size_t layer_span_ = 0;
  // Two slots of gathered layers (one computing, one arriving) and of layer gradients
  // (one being written, one being reduced); the tickets say when each is ready or free.
  DeviceBuffer<float> layer_buf_[2], layer_grad_[2];
  LayerSlots slots_;
  uint64_t grad_free_[2] = {0, 0};
  bool head_gathered_ = false;
  uint64_t head_ready_ = 0;
  DeviceBuffer<float> head_embed_, head_norm_, head_lm_;
  DeviceBuffer<float> head_grad_embed_, head_grad_norm_, head_grad_lm_;
  GradReadyHook grad_ready_;
  LoraTable lora_;
  DeviceBuffer<float> lora_params_, lora_grads_, lora_compute_;
  DeviceBuffer<float> lora_x_, lora_du_, lora_u_, norm_dw_;  // scratch
  uint64_t dropout_seed_ = 0;

  // Activations: one set per layer, or one shared set plus the layer inputs when
  // activation checkpointing recomputes each layer in backward.
  int64_t B_ = 0, T_ = 0;
  std::vector<LayerActs> acts_;
  std::vector<DeviceBuffer<float>> layer_inputs_;
  DeviceBuffer<float> x_final_, xn_final_, rstd_final_;
  DeviceBuffer<float> xn_, h_;  // recomputed activations (scratch shared by all layers)
  DeviceBuffer<float> dx_, dxn_, dh_, dgu_, datt_, dqkv_, logits_chunk_, rows_x_, rows_dx_;
  DeviceBuffer<float> dy_;            // rounded_operand's copy
  DeviceBuffer<uint16_t> head_bf16_;  // the lm_head as bf16 bits, for bf16 kernels
  DeviceBuffer<float> head_f32_;      // a bf16-stored lm_head widened, for fp32 kernels
  DeviceBuffer<int32_t> ids_, targets_, positions_, doc_start_, rows_targets_;
  DeviceBuffer<float> rope_;  // [T, D] cos | sin
  int64_t rope_len_ = 0;
  std::vector<int32_t> host_targets_;
};

// The rotary table for positions [0, T): row p holds cos(p·f_i) for i < D/2 then sin.
// Frequencies follow HF, including rope_scaling type llama3.
std::vector<float> rope_table(const LlamaConfig& cfg, int64_t T);

}  // namespace lathe
