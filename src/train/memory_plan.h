// The memory planner behind `lathe plan`: the device and host bytes one process of a
// training run needs, for each data-parallel sharding strategy, before anything is
// allocated. Two accounts side by side:
//   - the ZeRO paper's model-state formulas for mixed-precision Adam (Rajbhandari et al.,
//     "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models", 2020, sec. 3
//     and 5: 2Ψ bf16 parameters + 2Ψ bf16 gradients + KΨ optimizer states with K = 12 for
//     the fp32 master copy, m and v), the usual baseline;
//   - lathe's own layout, counted from the code: fp32 master parameters and fp32
//     gradients, a bf16 compute copy in bf16 runs, AdamW m and v in fp32, the frozen base
//     of LoRA/QLoRA as stored, and the activation buffers of LlamaModel::ensure_buffers /
//     head_loss_and_grad.
// Sharding divides what each strategy shards: zero1 the optimizer state, zero2 also the
// gradients, full_shard (zero3) also the parameters; hybrid_shard does full_shard within
// groups of dist.shard_group_size processes and replicates across groups.
#pragma once
#include <cstdint>
#include <string>

#include "dist/strategy.h"
#include "model/frozen_base.h"
#include "model/llama.h"
#include "model/llama_config.h"
#include "model/lora.h"

namespace lathe {

struct Config;

// Model states per process by the ZeRO formulas (bytes): params 2Ψ, grads 2Ψ, optimizer
// 12Ψ (fp32 master + m + v), each divided by `shard_degree` where the strategy shards it:
// DDP 16Ψ, ZeRO-1 4Ψ + 12Ψ/N, ZeRO-2 2Ψ + 14Ψ/N, ZeRO-3 16Ψ/N (hybrid: ZeRO-3 with N =
// the group size).
struct ZeroStates {
  double params = 0, grads = 0, optimizer = 0;
  double total() const { return params + grads + optimizer; }
};
ZeroStates zero_formula(double psi, ShardStrategy s, int64_t shard_degree);

struct PlanInput {
  Precision precision = Precision::BF16;
  int64_t batch_size = 4;  // micro-batch rows per process
  int64_t seq_len = 512;
  bool activation_checkpointing = false;
  // LoRA / QLoRA: the base is frozen, only the adapters train.
  bool lora = false;
  LoraSpec lora_spec;
  BaseDtype base_dtype = BaseDtype::BF16;
  bool double_quant = false;
  // Data parallel.
  ShardStrategy strategy = ShardStrategy::NoShard;
  int64_t world_size = 1;
  int64_t shard_group_size = 0;    // hybrid: processes per group; 0 = procs_per_node
  int64_t procs_per_node = 0;      // 0 = min(world_size, 8)
  bool offload_optimizer = false;  // AdamW m and v live in host memory
  int64_t save_bytes = 2;          // bytes per parameter of the exported model
  // Whether bf16 products run on bf16 kernels (GPUs; CPUs with AVX512_BF16 or AMX) or on
  // fp32 ones (AVX2, AVX-512 without BF16): each has its own scratch. `lathe plan` plans
  // for bf16 kernels; a plan for this machine's CPU asks its backend.
  bool bf16_kernels = true;
};

// PlanInput from a run config (train.*, data.seq_len, peft.*, dist.*, output.save_dtype),
// resolved the way the trainer and model loader resolve them.
PlanInput plan_input_from_config(const Config& cfg, int64_t world_size, int64_t procs_per_node);

// Bytes per process (device unless named host). Shared buffers are counted once.
struct MemoryPlan {
  PlanInput in;
  int64_t shard_degree = 1;     // processes a sharded state is split over (N, or the group)
  int64_t procs_per_node = 1;   // resolved
  size_t num_params = 0;        // Ψ of the model
  size_t trainable_params = 0;  // what AdamW updates: all parameters, or the adapters
  size_t compute_params = 0;    // length of the bf16 compute copy (0 in fp32)
  int64_t logits_rows = 0;      // rows of the lm_head logits chunk

  // The ZeRO formulas over the trainable Ψ; with LoRA the frozen base is added as stored.
  ZeroStates zero;
  double zero_frozen = 0;

  // lathe's layout.
  double master = 0;            // fp32 trainable parameters
  double compute_copy = 0;      // the bf16 copy products read (bf16 runs; fp32 for adapters)
  double frozen_base = 0;       // LoRA: linears as base_dtype, embedding/lm_head/norms fp32
  double shard_buffers = 0;     // shard_grad_op: the reduce-scattered range (grad_shard_);
                                // full_shard: one gathered unit (a layer or embedding / lm_head)
  double grads = 0;             // fp32
  double optimizer = 0;         // AdamW m and v, fp32 (0 on the device when offloaded)
  double optimizer_states = 0;  // m and v wherever they live
  double activations_no_ckpt = 0, activations_ckpt = 0;  // ensure_buffers, both ways
  double logits_scratch = 0;  // head_loss_and_grad: logits chunk, rows_x, rows_dx, targets
  double other_scratch = 0;   // norm_dw, LoRA du/dropout, the frozen base's expanded layer

  double activations() const {
    return in.activation_checkpointing ? activations_ckpt : activations_no_ckpt;
  }
  double scratch() const { return logits_scratch + other_scratch; }
  double model_states() const {
    return master + compute_copy + frozen_base + shard_buffers + grads + optimizer;
  }
  double device_total() const { return model_states() + activations() + scratch(); }
  // The same run with the model states of the ZeRO formulas.
  double zero_total() const { return zero.total() + zero_frozen + activations() + scratch(); }

  // Host.
  double host_offload = 0;           // per process: m and v when offloaded
  double host_export = 0;            // rank 0: the exported model (+ gathered fp32 params if split)
  double host_checkpoint = 0;        // per process while saving a checkpoint (sharded optimizer)
  double host_checkpoint_rank0 = 0;  // rank 0 on top: whole m and v
  double host_resume = 0;            // per process while resuming: whole m and v, then sliced
  // First node: its processes' offload and checkpoint buffers + rank 0's larger of the
  // export and checkpoint buffers (resume is reported, not added: it is transient).
  double host_per_node = 0;
};

// Mirrors LlamaModel's constructor and ensure_buffers, FrozenBase, AdamW and
// head_loss_and_grad; see memory_plan.cpp for which line counts what.
MemoryPlan plan_memory(const LlamaConfig& cfg, const PlanInput& in);

// The least-sharded setting that fits: no_shard > zero1 > zero2 > full_shard >
// full_shard + activation checkpointing > + optimizer offload to the host.
struct Recommendation {
  bool fits = false;
  MemoryPlan plan;     // of the recommended setting (the last one tried when none fits)
  std::string reason;  // one paragraph: what was tried, what fits, the headroom
};
// gpu_bytes: usable device memory per process (after any reserve); host_bytes per node.
Recommendation recommend_strategy(const LlamaConfig& cfg, const PlanInput& in, double gpu_bytes,
                                  double host_bytes);

// "24GiB", "80GB", "512MiB", "1.5T" (K/M/G/T alone are binary), or plain bytes.
double parse_byte_size(const std::string& text);
std::string format_bytes(double bytes);  // "12.34 GiB", "512.0 MiB"

// The report `lathe plan` prints, and its JSON form.
std::string plan_report(const LlamaConfig& cfg, const MemoryPlan& plan, const Recommendation& rec,
                        double gpu_bytes, double reserve_bytes, double host_bytes);
std::string plan_json(const LlamaConfig& cfg, const MemoryPlan& plan, const Recommendation& rec,
                      double gpu_bytes, double reserve_bytes, double host_bytes);

}  // namespace lathe
