#include "train/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "io/safetensors.h"
#include "model/nf4.h"
#include "model/param_table.h"
#include "train/config.h"
#include "train/model_loader.h"

namespace lathe {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

bool shards_optimizer(ShardStrategy s) { return s != ShardStrategy::NoShard; }
bool shards_grads(ShardStrategy s) {
  return s == ShardStrategy::Zero2 || s == ShardStrategy::FullShard ||
         s == ShardStrategy::HybridShard;
}
bool shards_params(ShardStrategy s) {
  return s == ShardStrategy::FullShard || s == ShardStrategy::HybridShard;
}

// Floats from one layer's first tensor to the next layer's (FrozenBase::layer_span_).
size_t layer_span(const ParamTable& t) {
  if (t.layers.empty()) return 0;
  return t.layers.size() > 1 ? t.layers[1].ln1 - t.layers[0].ln1 : t.final_norm - t.layers[0].ln1;
}

bool is_block_linear(const ParamEntry& e) {
  return e.shape.size() == 2 && e.name.find(".layers.") != std::string::npos;
}

// Bytes of one frozen linear weight as FrozenBase::set stores it.
size_t stored_linear_bytes(size_t n, BaseDtype d, bool double_quant) {
  if (d == BaseDtype::F32) return n * 4;
  if (d == BaseDtype::BF16) return n * 2;
  const size_t blocks = ceil_div(n, size_t(kNf4Block));
  size_t b = (n + 1) / 2;  // two 4-bit codes per byte
  if (double_quant) {
    b += blocks;                                         // 8-bit scale codes
    b += 2 * ceil_div(blocks, size_t(kScaleGroup)) * 4;  // (lo, step) per group
  } else {
    b += blocks * 4;  // fp32 absmax
  }
  return b;
}

// The frozen base of a LoRA run, mirroring FrozenBase's constructor and set().
struct FrozenLayout {
  size_t linear = 0;          // the blocks' linear weights as stored (all layers)
  size_t linear_params = 0;   // their parameter count
  size_t other = 0;           // norms_ per layer, embed_, final_norm_, lm_head_ (fp32)
  size_t expand_scratch = 0;  // scratch_ / scratch16_ (one layer) and absmax_scratch_
};

FrozenLayout frozen_layout(const LlamaConfig& c, const ParamTable& t, BaseDtype d, bool dq,
                           bool bf16) {
  FrozenLayout f;
  const size_t C = size_t(c.hidden_size), V = size_t(c.vocab_size), L = t.layers.size();
  const size_t span = layer_span(t);
  std::vector<size_t> per_layer(L, 0);
  size_t max_blocks = 0;
  for (const ParamEntry& e : t.entries) {
    if (!is_block_linear(e)) continue;
    f.linear_params += e.numel;
    const size_t b = stored_linear_bytes(e.numel, d, dq);
    f.linear += b;
    const size_t l = (e.offset - t.layers[0].ln1) / span;
    per_layer[l] += b;
    max_blocks = std::max(max_blocks, ceil_div(e.numel, size_t(kNf4Block)));
  }
  if (d == BaseDtype::F32) {  // layer_f32_: whole per-layer slices, norms' places included
    f.linear = L * span * 4;
    std::fill(per_layer.begin(), per_layer.end(), span * 4);
  }
  f.other = L * 2 * C * 4 + V * C * 4 + C * 4 + (c.tie_word_embeddings ? 0 : V * C * 4);
  // FrozenBase: scratch_ (fp32) where NF4 or fp32 products need it, scratch16_ (bf16
  // bits) in bf16 training.
  const bool bits = bf16 && d != BaseDtype::F32;
  if (d == BaseDtype::NF4 || (d == BaseDtype::BF16 && !bits)) f.expand_scratch = span * 4;
  if (bits) f.expand_scratch += span * 2;
  if (d == BaseDtype::NF4 && dq) f.expand_scratch += max_blocks * 4;
  return f;
}

// Activation bytes of one training step. Keep in sync with LlamaModel::ensure_buffers
// (src/model/llama.cpp): every ensure() there has its term here, in the same order.
double activation_bytes(const LlamaConfig& c, int64_t B, int64_t T, bool checkpointing,
                        size_t lora_u_floats_per_token) {
  const double M = double(B * T);
  const double C = double(c.hidden_size), I = double(c.intermediate_size);
  const double H = double(c.num_attention_heads), L = double(c.num_hidden_layers);
  const double S = double(c.q_dim() + 2 * c.kv_dim()), HD = double(c.q_dim());
  const double sets = checkpointing ? 1 : L;
  double per_set = 0;                                   // LayerActs, one per layer (or one shared)
  if (!checkpointing) per_set += M * C;                 // x_in
  per_set += M;                                         // rstd1
  per_set += M * S;                                     // qkv
  per_set += M * HD;                                    // att
  per_set += M * H;                                     // lse
  per_set += M * C;                                     // x_mid
  per_set += M;                                         // rstd2
  per_set += M * 2 * I;                                 // gu
  per_set += M * double(lora_u_floats_per_token);       // lora_u (LoRA)
  const double inputs = checkpointing ? L * M * C : 0;  // layer_inputs_
  double shared = 0;
  shared += M * C;            // xn_
  shared += M * I;            // h_
  shared += M * C;            // x_final_
  shared += M * C;            // xn_final_
  shared += M;                // rstd_final_
  shared += M * C;            // dx_
  shared += M * C;            // dxn_
  shared += M * I;            // dh_
  shared += M * 2 * I;        // dgu_
  shared += M * HD;           // datt_
  shared += M * S;            // dqkv_
  const double ints = 4 * M;  // ids_, targets_, positions_, doc_start_ (int32)
  const double rope = double(T) * double(c.head_dim);  // ensure_rope: [T, D] cos | sin
  return 4 * (sets * per_set + inputs + shared + rope) + 4 * ints;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string with_commas(size_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string pad(const std::string& s, size_t w, bool right = false) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

std::string setting_name(const MemoryPlan& p) {
  std::string s = shard_strategy_name(p.in.strategy);
  if (p.in.strategy == ShardStrategy::HybridShard)
    s += " (groups of " + std::to_string(p.shard_degree) + ")";
  if (p.in.activation_checkpointing) s += " + activation checkpointing";
  if (p.in.offload_optimizer) s += " + optimizer offload";
  return s;
}

}  // namespace

ZeroStates zero_formula(double psi, ShardStrategy s, int64_t shard_degree) {
  const double n = double(std::max<int64_t>(1, shard_degree));
  ZeroStates z;
  z.params = 2 * psi / (shards_params(s) ? n : 1);         // bf16 parameters
  z.grads = 2 * psi / (shards_grads(s) ? n : 1);           // bf16 gradients
  z.optimizer = 12 * psi / (shards_optimizer(s) ? n : 1);  // fp32 master, m, v (K = 12)
  return z;
}

PlanInput plan_input_from_config(const Config& cfg, int64_t world_size, int64_t procs_per_node) {
  PlanInput in;
  in.precision = precision_from_name(cfg.train.precision);
  in.batch_size = cfg.train.batch_size;
  in.seq_len = cfg.data.seq_len;
  in.activation_checkpointing = cfg.train.activation_checkpointing;
  if (const std::optional<AdapterSetup> a = adapter_setup(cfg)) {
    in.lora = true;
    in.lora_spec = a->lora;
    in.base_dtype = a->base_dtype;
    in.double_quant = a->double_quant;
  }
  in.strategy = shard_strategy_from_name(cfg.dist.strategy);
  in.shard_group_size = cfg.dist.shard_group_size;
  in.world_size = world_size;
  in.procs_per_node = procs_per_node;
  const std::string& sd =
      cfg.output.save_dtype.empty() ? cfg.train.precision : cfg.output.save_dtype;
  in.save_bytes = sd == "fp32" ? 4 : 2;
  return in;
}

MemoryPlan plan_memory(const LlamaConfig& c, const PlanInput& in) {
  LATHE_CHECK(in.world_size >= 1, "the world size must be at least 1, not ", in.world_size);
  LATHE_CHECK(in.batch_size >= 1 && in.seq_len >= 1, "batch size and sequence length must be >= 1");
  MemoryPlan p;
  p.in = in;
  const int64_t N = in.world_size;
  p.procs_per_node =
      in.procs_per_node > 0 ? std::min(in.procs_per_node, N) : std::min<int64_t>(N, 8);
  p.shard_degree = in.strategy == ShardStrategy::NoShard ? 1 : N;
  if (in.strategy == ShardStrategy::HybridShard) {
    int64_t g = in.shard_group_size > 0 ? in.shard_group_size : p.procs_per_node;
    g = std::min(g, N);
    LATHE_CHECK(N % g == 0, "hybrid_shard: dist.shard_group_size=", g,
                " must divide the world size ", N);
    p.shard_degree = g;
  }
  const size_t d = size_t(p.shard_degree);
  const ShardStrategy s = in.strategy;
  // What lathe shards today (Trainer's constructor and data_parallel_update): zero1 and
  // shard_grad_op keep AdamW m and v for this process's range only; shard_grad_op's
  // backward still accumulates into the whole fp32 gradient buffer and reduce-scatters it
  // into an extra range-sized buffer (grad_shard_). full_shard (LlamaModel with a
  // ParamShard) splits master, gradients and optimizer state and adds its gather buffers;
  // hybrid_shard is counted the same way over its group.
  const bool sharded = s != ShardStrategy::NoShard && d > 1;
  const bool split_all = shards_params(s) && d > 1;
  // Elements of the largest range of a flat buffer (shard_ranges in communicator.cpp:
  // ceil(n / d) rounded up to 16 elements).
  auto range = [&](size_t n) { return double(std::min(n, (ceil_div(n, d) + 15) / 16 * 16)); };
  auto part = [&](size_t n, bool on) { return on ? range(n) : double(n); };

  // Host bytes a streamed save of `fp32_bytes` of device memory holds at once: one piece
  // of the file (safetensors_staging_bytes, 64 MiB) and, when converting to a narrower
  // dtype, the fp32 piece it is converted from (io/staged_tensor.cpp).
  auto save_staging = [](double fp32_bytes, int64_t save_bytes) {
    const double piece = double(safetensors_staging_bytes());
    return std::min(piece, fp32_bytes / 4 * double(save_bytes)) +
           (save_bytes == 4 ? 0.0 : std::min(piece, fp32_bytes));
  };

  const ParamTable t = make_param_table(c);
  const size_t C = size_t(c.hidden_size), V = size_t(c.vocab_size);
  const bool bf16 = in.precision == Precision::BF16;
  const int64_t M = in.batch_size * in.seq_len;
  p.num_params = t.total;

  size_t lora_u_per_token = 0;
  double other = double(C) * 4;  // norm_dw_ (LlamaModel constructor)
  double unit = 0;               // full_shard: the largest unsharded unit, gathered
  if (!in.lora) {
    // LlamaModel constructor: params_, grads_ [total]; bf16: compute_ from compute_offset_,
    // which skips the embedding table when it is not tied to the lm_head.
    p.trainable_params = t.total;
    const size_t offset = c.tie_word_embeddings || t.layers.empty() ? 0 : t.layers[0].ln1;
    p.compute_params = bf16 ? t.total - offset : 0;
    p.master = 4 * part(t.total, split_all);
    // The copy is bf16 bits. full_shard keeps none: gathered layers are rounded in place.
    p.compute_copy = split_all ? 0 : 2 * part(p.compute_params, split_all);
    // LlamaModel's full_shard buffers: two gathered layers (one computing, the next
    // arriving) and two layer gradients (one written, one being reduced), the gathered
    // embedding, lm_head and final norm and their gradients (reduced straight into the
    // shard, no scratch).
    unit = split_all ? 4 * (4 * double(layer_span(t)) + 4 * V * C + 2 * C) : 0;
    // One process streams the export from the master weights (LlamaModel::export_tensors):
    // only the save's staging buffers. Several write their shares of the files together
    // (export_hf_model_parallel): rank 0 converts its copy of the fp32 master to the save
    // dtype (fp32: written from the master itself); with split parameters it first gathers
    // them.
    p.host_export = N == 1 ? save_staging(4 * double(t.total), in.save_bytes)
                           : (in.save_bytes == 4 ? 0.0 : double(t.total) * double(in.save_bytes)) +
                                 (split_all ? 4 * double(t.total) : 0);
  } else {
    // LlamaModel constructor with an adapter: the frozen base, lora_params_, lora_grads_
    // and (bf16) lora_compute_, all [lora_.total].
    const LoraTable lt = make_lora_table(c, in.lora_spec);
    p.trainable_params = lt.total;
    p.compute_params = bf16 ? lt.total : 0;
    // The adapters are replicated and updated as under shard_grad_op, whatever the strategy.
    p.master = 4 * double(lt.total);
    p.compute_copy = 4 * double(p.compute_params);
    const FrozenLayout f = frozen_layout(c, t, in.base_dtype, in.double_quant, bf16);
    const double frozen = double(f.linear + f.other);
    // full_shard: FrozenBase keeps layers r, r + N, ... of the linears (at most ⌈L/N⌉) and
    // receives the others into two slots; norms, embedding and head stay replicated.
    const double L = double(t.layers.size()), per_layer = double(f.linear) / L;
    p.frozen_base = split_all ? std::ceil(L / double(d)) * per_layer + double(f.other) : frozen;
    p.zero_frozen = shards_params(s) ? frozen / double(d) : frozen;
    unit = split_all ? 2 * per_layer : 0;  // the slots (frozen: no gradient)
    other += double(f.expand_scratch);
    if (!lt.entries.empty()) {
      lora_u_per_token = size_t(lt.spec.r) * lt.by_layer[0].size();  // LayerActs::lora_u
      other += 4 * double(M) * double(lt.spec.r);                    // lora_du_ (lora_backward)
      if (lt.spec.dropout > 0) {  // lora_x_: the dropped-out input
        int64_t in_max = 0;
        for (const LoraEntry& e : lt.entries) in_max = std::max(in_max, e.in);
        other += 4 * double(M) * double(in_max);
      }
    }
    p.host_export = save_staging(4 * double(lt.total), in.save_bytes);  // save_peft_adapter
  }
  const size_t n = p.trainable_params;
  p.grads = 4 * part(n, split_all && !in.lora);
  if (split_all && !in.lora)
    p.shard_buffers = unit;
  else if ((s == ShardStrategy::Zero2 || split_all) && sharded)
    p.shard_buffers = 4 * range(n) + unit;    // grad_shard_ (+ LoRA full_shard's slots)
  p.optimizer_states = 8 * part(n, sharded);  // AdamW m_, v_ (Trainer: shard_.second)
  p.optimizer = in.offload_optimizer ? 0 : p.optimizer_states;
  p.host_offload = in.offload_optimizer ? p.optimizer_states : 0;
  // Checkpoints (checkpoint_save_sharded) are written by every process straight from its
  // own buffers, and resume (checkpoint_load_range) reads into them: no extra host copy.
  // One process (checkpoint_save) streams params, m and v from the device, one after
  // another, through the save's staging buffer.
  p.host_checkpoint = 0;
  p.host_checkpoint_rank0 = N == 1 ? save_staging(4 * double(n), 4) : 0;
  p.host_resume = 0;
  p.host_per_node = double(p.procs_per_node) * (p.host_offload + p.host_checkpoint) +
                    std::max(p.host_export, p.host_checkpoint_rank0);
  p.zero = zero_formula(double(n), s, p.shard_degree);
  if (in.offload_optimizer) p.zero.optimizer = 0;

  p.activations_no_ckpt = activation_bytes(c, in.batch_size, in.seq_len, false, lora_u_per_token);
  p.activations_ckpt = activation_bytes(c, in.batch_size, in.seq_len, true, lora_u_per_token);

  // head_loss_and_grad: rows with a target (at most M), `chunk` of them at a time.
  // Floats of logits at once (128 MiB): 32 MiB split the 56M model's 1024 rows into chunks
  // of 262, whose dx = dlogits·W products (K = 32000) ran at 93 GFLOP/s against 150 for
  // the whole batch; the step was 10% slower (2.61 s against 2.36 s, fp32, AVX2).
  const int64_t budget = int64_t(32) << 20;
  const int64_t chunk = std::max<int64_t>(16, std::min<int64_t>(M, budget / int64_t(V)));
  p.logits_rows = chunk;
  p.logits_scratch = 4 * double(chunk) * double(V)        // logits_chunk_
                     + 2 * 4 * double(chunk) * double(C)  // rows_x_, rows_dx_
                     + 2 * 4 * double(chunk);             // rows_targets_: rows | targets
  if (in.precision == Precision::BF16) {
    const double I = double(c.intermediate_size);
    other += 4 * double(M) * double(C);  // rounded_operand's copy of the residual gradient
    if (in.bf16_kernels) {
      // The packed operands of the largest products (a logits chunk, an M x I activation)
      // and, for a head kept in fp32 (frozen or gathered), the head packed once per pass.
      other += 2 * double(chunk) * double(V) + 2 * double(M) * I;
      if (in.lora || split_all) other += 2 * double(V) * double(C);
    } else {
      // fp32 kernels widen weights stored only as bf16 bits: a full model's head once per
      // pass (head_f32_), and each layer product's weight into one fp32 copy (OnednnMatmul),
      // the largest being gate|up [2I, C]. Gathered full_shard layers and an fp32 frozen
      // base are fp32 already.
      if (!in.lora && !split_all) other += 4 * double(V) * double(C);
      const bool layer_bits = in.lora ? in.base_dtype != BaseDtype::F32 : !split_all;
      if (layer_bits) other += 4 * 2 * I * double(C);
    }
  }
  p.other_scratch = other;
  return p;
}

Recommendation recommend_strategy(const LlamaConfig& c, const PlanInput& base, double gpu_bytes,
                                  double host_bytes) {
  struct Step {
    ShardStrategy s;
    bool ckpt, offload;
  };
  // Phases: as configured, then with activation checkpointing, then also offloading the
  // optimizer state; within each, the least-sharded strategy first.
  std::vector<std::pair<bool, bool>> phases = {{base.activation_checkpointing, false}};
  if (!base.activation_checkpointing) phases.push_back({true, false});
  phases.push_back({true, true});
  const ShardStrategy order[] = {ShardStrategy::NoShard, ShardStrategy::Zero1, ShardStrategy::Zero2,
                                 ShardStrategy::FullShard};

  auto plan_for = [&](const Step& st, int64_t world) {
    PlanInput in = base;
    in.strategy = st.s;
    in.activation_checkpointing = st.ckpt;
    in.offload_optimizer = st.offload;
    in.world_size = world;
    return plan_memory(c, in);
  };
  auto fits = [&](const MemoryPlan& p) {
    return p.device_total() <= gpu_bytes && p.host_per_node <= host_bytes;
  };

  Recommendation r;
  std::string tried;
  for (const auto& [ckpt, offload] : phases) {
    double listed = -1;  // a strategy that saves nothing over the last one is not listed
    for (ShardStrategy s : order) {
      const Step st{s, ckpt, offload};
      const MemoryPlan p = plan_for(st, base.world_size);
      r.plan = p;
      if (fits(p)) {
        r.fits = true;
        r.reason = tried + setting_name(p) + " fits: " + format_bytes(p.device_total()) + " of " +
                   format_bytes(gpu_bytes) + " per process (" +
                   format_bytes(gpu_bytes - p.device_total()) + " to spare)";
        if (offload)
          r.reason += "; the optimizer state takes " + format_bytes(p.host_per_node) +
                      " of host memory on the first node";
        r.reason += ".";
        return r;
      }
      if (p.device_total() == listed) continue;
      listed = p.device_total();
      const bool host_short = p.device_total() <= gpu_bytes;
      tried += setting_name(p) + " needs " +
               (host_short ? format_bytes(p.host_per_node) + " of host memory per node > " +
                                 format_bytes(host_bytes)
                           : format_bytes(p.device_total()) + " > " + format_bytes(gpu_bytes)) +
               "; ";
    }
  }
  // Nothing fits: what would.
  const MemoryPlan& last = r.plan;
  const double floor = last.activations() + last.scratch();
  r.reason = tried + "nothing fits in " + format_bytes(gpu_bytes) + " per process";
  if (floor + last.shard_buffers >= gpu_bytes) {
    r.reason += ": activations and scratch alone need " + format_bytes(floor + last.shard_buffers) +
                "; lower train.batch_size or data.seq_len.";
    return r;
  }
  for (int64_t w = base.world_size * 2; w <= (int64_t(1) << 20); w *= 2) {
    for (const Step& st : {Step{ShardStrategy::FullShard, true, false},
                           Step{ShardStrategy::FullShard, true, true}}) {
      const MemoryPlan p = plan_for(st, w);
      if (fits(p)) {
        r.reason += "; " + setting_name(p) + " would fit with " + std::to_string(w) +
                    " processes (" + format_bytes(p.device_total()) + " each).";
        return r;
      }
    }
  }
  r.reason += ".";
  return r;
}

double parse_byte_size(const std::string& text) {
  const char* s = text.c_str();
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  LATHE_CHECK(end != s && v >= 0, "'", text, "' is not a size: use e.g. 24GiB, 80GB or 512MiB");
  std::string unit(end);
  unit.erase(
      std::remove_if(unit.begin(), unit.end(), [](unsigned char ch) { return std::isspace(ch); }),
      unit.end());
  for (char& ch : unit) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},          {"b", 1},           {"k", 1024.0},        {"kib", 1024.0}, {"kb", 1e3},
      {"m", 1048576.0}, {"mib", 1048576.0}, {"mb", 1e6},          {"g", kGiB},     {"gib", kGiB},
      {"gb", 1e9},      {"t", kGiB * 1024}, {"tib", kGiB * 1024}, {"tb", 1e12}};
  for (const auto& [name, mult] : kUnits)
    if (unit == name) return v * mult;
  fail("'", text, "': unknown unit '", unit, "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)");
}

std::string format_bytes(double b) {
  if (b >= kGiB) return fmt("%.2f GiB", b / kGiB);
  if (b >= 1048576.0) return fmt("%.1f MiB", b / 1048576.0);
  if (b >= 1024.0) return fmt("%.1f KiB", b / 1024.0);
  return fmt("%.0f B", b);
}

std::string plan_report(const LlamaConfig& c, const MemoryPlan& p, const Recommendation& rec,
                        double gpu_bytes, double reserve_bytes, double host_bytes) {
  const PlanInput& in = p.in;
  const bool bf16 = in.precision == Precision::BF16;
  std::string o;
  o += "lathe plan: " + with_commas(p.num_params) + " parameters (" +
       std::to_string(c.num_hidden_layers) + " layers, hidden " + std::to_string(c.hidden_size) +
       ", vocab " + std::to_string(c.vocab_size) + "), " + (bf16 ? "bf16" : "fp32") + ", " +
       std::to_string(in.world_size) + " process" + (in.world_size > 1 ? "es" : "") + " (" +
       std::to_string(p.procs_per_node) + " per node)\n";
  o += "  " + setting_name(p) + "; micro-batch " + std::to_string(in.batch_size) + " x " +
       std::to_string(in.seq_len) + " tokens per process\n";
  if (in.lora)
    o += "  LoRA r=" + std::to_string(in.lora_spec.r) + " on " +
         std::to_string(in.lora_spec.targets.size()) +
         " projections: " + with_commas(p.trainable_params) + " trainable; frozen base " +
         base_dtype_name(in.base_dtype) + (in.double_quant ? " (double quant)" : "") + "\n";
  else
    o += "  full fine-tuning: all " + with_commas(p.trainable_params) + " parameters train\n";
  o += "\n";

  const size_t w0 = 46, w1 = 14, w2 = 16;
  auto row = [&](const std::string& name, const std::string& a, const std::string& b) {
    o += pad(name, w0) + pad(a, w1, true) + pad(b, w2, true) + "\n";
  };
  auto b = [](double x) { return format_bytes(x); };
  row("Per process, device memory", "ZeRO formula", "lathe (engine)");
  row("  parameters: fp32 master", "(optimizer)", b(p.master));
  row(std::string("  parameters: compute copy") + (bf16 ? " (bf16)" : ""), b(p.zero.params),
      bf16 ? b(p.compute_copy) : "-");
  if (in.lora) row("  frozen base (LoRA)", b(p.zero_frozen), b(p.frozen_base));
  if (p.shard_buffers > 0)
    row(shards_params(in.strategy) ? "  gathered unit (largest layer or embedding)"
                                   : "  gradient range (reduce-scatter target)",
        "-", b(p.shard_buffers));
  row("  gradients", b(p.zero.grads), b(p.grads));
  row(std::string("  optimizer: AdamW m, v") + (in.offload_optimizer ? " (on the host)" : ""),
      b(p.zero.optimizer), b(p.optimizer));
  row(std::string("  activations, checkpointing off") + (in.activation_checkpointing ? "" : " *"),
      b(p.activations_no_ckpt), b(p.activations_no_ckpt));
  row(std::string("  activations, checkpointing on") + (in.activation_checkpointing ? " *" : ""),
      b(p.activations_ckpt), b(p.activations_ckpt));
  row("  scratch: logits chunk " + std::to_string(p.logits_rows) + " x " +
          std::to_string(c.vocab_size) + " + other",
      b(p.scratch()), b(p.scratch()));
  row("  total (* = activations counted)", b(p.zero_total()), b(p.device_total()));
  o += "  ZeRO formula: mixed-precision Adam, 2 bytes/param bf16 parameters + 2 bf16 gradients +\n"
       "  12 optimizer (fp32 master, m, v); the activations and scratch are lathe's in both.\n";
  if (bf16 && !in.lora)
    o += "  lathe keeps fp32 master + fp32 gradients and, in bf16, a bf16 copy of the weights\n"
         "  products read: 18 bytes/param unsharded.\n";
  o += "\n";

  o += "Host memory (--host-mem " + format_bytes(host_bytes) + " per node)\n";
  o +=
      "  optimizer offload (m, v): " +
      (in.offload_optimizer
           ? b(p.host_offload) + " per process x " + std::to_string(p.procs_per_node) + " on a node"
           : std::string("none (") + b(p.optimizer_states) + " per process if offloaded)") +
      "\n";
  o += "  rank-0 export buffer: " + b(p.host_export) + "\n";
  o += "  first node total: " + b(p.host_per_node) + "\n";
  o += p.host_checkpoint_rank0 > 0
           ? "  checkpoint save: " + b(p.host_checkpoint_rank0) +
                 " (params, m and v streamed through one staging buffer)\n\n"
           : "  (checkpoints are written and read by each process from its own buffers)\n\n";

  o += "Strategies (lathe per process; --gpu-mem " + format_bytes(gpu_bytes + reserve_bytes) +
       " - " + format_bytes(reserve_bytes) + " reserved = " + format_bytes(gpu_bytes) + ")\n";
  o += pad("  strategy", 28) + pad("ZeRO states", 13, true) + pad("lathe states", 14, true) +
       pad("total, ckpt off", 17, true) + pad("total, ckpt on", 16, true) + "\n";
  std::vector<ShardStrategy> all = {ShardStrategy::NoShard, ShardStrategy::Zero1,
                                    ShardStrategy::Zero2, ShardStrategy::FullShard};
  if (in.strategy == ShardStrategy::HybridShard) all.push_back(ShardStrategy::HybridShard);
  for (ShardStrategy s : all) {
    PlanInput q = in;
    q.strategy = s;
    q.offload_optimizer = false;
    q.activation_checkpointing = false;
    const MemoryPlan off = plan_memory(c, q);
    q.activation_checkpointing = true;
    const MemoryPlan on = plan_memory(c, q);
    auto cell = [&](double x) { return format_bytes(x) + (x <= gpu_bytes ? " ok" : "   "); };
    std::string name = shard_strategy_name(s);
    if (s == ShardStrategy::HybridShard)
      name += " (groups of " + std::to_string(off.shard_degree) + ")";
    o += pad("  " + name, 28) + pad(b(off.zero.total() + off.zero_frozen), 13, true) +
         pad(b(off.model_states()), 14, true) + pad(cell(off.device_total()), 17, true) +
         pad(cell(on.device_total()), 16, true) + "\n";
  }
  o += "\nRecommendation: ";
  o += rec.fits ? setting_name(rec.plan) : std::string("none fits");
  // One tried setting per line.
  std::string reason = rec.reason;
  for (size_t at = 0; (at = reason.find("; ", at)) != std::string::npos; at += 4)
    reason.replace(at, 2, ";\n  ");
  o += "\n  " + reason + "\n";
  return o;
}

std::string plan_json(const LlamaConfig& c, const MemoryPlan& p, const Recommendation& rec,
                      double gpu_bytes, double reserve_bytes, double host_bytes) {
  auto states = [](const MemoryPlan& q) {
    return nlohmann::json{{"master", q.master},
                          {"compute_copy", q.compute_copy},
                          {"frozen_base", q.frozen_base},
                          {"shard_buffers", q.shard_buffers},
                          {"grads", q.grads},
                          {"optimizer", q.optimizer},
                          {"activations_no_checkpointing", q.activations_no_ckpt},
                          {"activations_checkpointing", q.activations_ckpt},
                          {"scratch", q.scratch()},
                          {"logits_rows", q.logits_rows},
                          {"total", q.device_total()}};
  };
  nlohmann::json j;
  j["params"] = p.num_params;
  j["trainable_params"] = p.trainable_params;
  j["precision"] = p.in.precision == Precision::BF16 ? "bf16" : "fp32";
  j["world_size"] = p.in.world_size;
  j["procs_per_node"] = p.procs_per_node;
  j["strategy"] = shard_strategy_name(p.in.strategy);
  j["shard_degree"] = p.shard_degree;
  j["batch_size"] = p.in.batch_size;
  j["seq_len"] = p.in.seq_len;
  j["activation_checkpointing"] = p.in.activation_checkpointing;
  j["peft"] = p.in.lora ? "lora" : "none";
  j["gpu_mem"] = gpu_bytes + reserve_bytes;
  j["reserve"] = reserve_bytes;
  j["host_mem"] = host_bytes;
  j["zero_formula"] = {{"params", p.zero.params},
                       {"grads", p.zero.grads},
                       {"optimizer", p.zero.optimizer},
                       {"frozen_base", p.zero_frozen},
                       {"total", p.zero_total()}};
  j["lathe"] = states(p);
  j["host"] = {{"optimizer_offload_per_process", p.host_offload},
               {"export_rank0", p.host_export},
               {"checkpoint_per_process", p.host_checkpoint},
               {"checkpoint_rank0", p.host_checkpoint_rank0},
               {"resume_per_process", p.host_resume},
               {"first_node", p.host_per_node}};
  nlohmann::json per = nlohmann::json::object();
  for (ShardStrategy s : {ShardStrategy::NoShard, ShardStrategy::Zero1, ShardStrategy::Zero2,
                          ShardStrategy::FullShard, ShardStrategy::HybridShard}) {
    if (s == ShardStrategy::HybridShard && p.in.strategy != s) continue;
    PlanInput q = p.in;
    q.strategy = s;
    const MemoryPlan m = plan_memory(c, q);
    per[shard_strategy_name(s)] = {
        {"zero_formula_states", m.zero.total() + m.zero_frozen},
        {"lathe_states", m.model_states()},
        {"total_no_checkpointing", m.model_states() + m.activations_no_ckpt + m.scratch()},
        {"total_checkpointing", m.model_states() + m.activations_ckpt + m.scratch()}};
  }
  j["strategies"] = per;
  j["recommendation"] = {{"fits", rec.fits},
                         {"strategy", shard_strategy_name(rec.plan.in.strategy)},
                         {"activation_checkpointing", rec.plan.in.activation_checkpointing},
                         {"offload_optimizer", rec.plan.in.offload_optimizer},
                         {"total", rec.plan.device_total()},
                         {"reason", rec.reason}};
  return j.dump(2);
}

}  // namespace lathe
