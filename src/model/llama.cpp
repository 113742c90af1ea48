#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "backend/host_staging.h"
#include "core/error.h"
#include "dist/comm_worker.h"
#include "io/safetensors.h"
#include "io/staged_tensor.h"

namespace lathe {
namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
  os << ']';
  return os.str();
}

}  // namespace

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::FP32;
  if (name == "bf16") return Precision::BF16;
  fail("unknown precision '", name, "': use fp32 or bf16");
}

std::vector<float> rope_table(const LlamaConfig& c, int64_t T) {
  const int64_t D = c.head_dim, half = D / 2;
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = 1.0 / std::pow(c.rope_theta, double(2 * i) / double(D));
  if (c.rope_scaling.type == "llama3") {
    // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
    const RopeScaling& s = c.rope_scaling;
    const double old_ctx = double(s.original_max_position_embeddings);
    const double low_wavelen = old_ctx / s.low_freq_factor;
    const double high_wavelen = old_ctx / s.high_freq_factor;
    for (double& f : inv_freq) {
      const double wavelen = 2 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = f / s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
  }
  std::vector<float> t(size_t(T * D));
  for (int64_t p = 0; p < T; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double a = double(p) * inv_freq[i];
      t[p * D + i] = float(std::cos(a));
      t[p * D + half + i] = float(std::sin(a));
    }
  return t;
}

LlamaModel::LlamaModel(const LlamaConfig& cfg, Backend& be, Precision precision,
                       bool activation_checkpointing, const AdapterSetup* adapter,
                       const ParamShard* shard)
    : cfg_(cfg),
      be_(be),
      precision_(precision),
      checkpointing_(activation_checkpointing),
      table_(make_param_table(cfg)) {
  norm_dw_ = DeviceBuffer<float>(be_, size_t(cfg_.hidden_size));
  if (adapter) {
    frozen_ =
        std::make_unique<FrozenBase>(cfg_, table_, be_, adapter->base_dtype, adapter->double_quant,
                                     precision_ == Precision::BF16, adapter->shard);
    lora_ = make_lora_table(cfg_, adapter->lora);
    lora_params_ = DeviceBuffer<float>(be_, lora_.total);
    lora_grads_ = DeviceBuffer<float>(be_, lora_.total);
    if (precision_ == Precision::BF16) lora_compute_ = DeviceBuffer<float>(be_, lora_.total);
    return;
  }
  if (shard && shard->worker && shard->worker->comm().size() > 1) {
    LATHE_CHECK(!table_.layers.empty(), "full_shard needs at least one layer");
    // The gathers and reductions run MPI collectives and elementwise loops on the host,
    // straight on the model's buffers.
    LATHE_CHECK(be_.host_accessible(), "full_shard on the ", be_.name(),
                " backend needs device collectives (NCCL), which are not written yet");
    sharded_ = true;
    shard_ = *shard;
    layer_span_ = table_.layers.size() > 1 ? table_.layers[1].ln1 - table_.layers[0].ln1
                                           : table_.final_norm - table_.layers[0].ln1;
    params_ = DeviceBuffer<float>(be_, std::max<size_t>(1, shard_.count));
    grads_ = DeviceBuffer<float>(be_, std::max<size_t>(1, shard_.count));
    const size_t VC = size_t(cfg_.vocab_size * cfg_.hidden_size), C = size_t(cfg_.hidden_size);
    for (int s = 0; s < 2; ++s) {
      layer_buf_[s] = DeviceBuffer<float>(be_, layer_span_);
      layer_grad_[s] = DeviceBuffer<float>(be_, layer_span_);
    }
    head_embed_ = DeviceBuffer<float>(be_, VC);
    head_lm_ = DeviceBuffer<float>(be_, VC);
    head_norm_ = DeviceBuffer<float>(be_, C);
    head_grad_embed_ = DeviceBuffer<float>(be_, VC);
    head_grad_lm_ = DeviceBuffer<float>(be_, VC);
    head_grad_norm_ = DeviceBuffer<float>(be_, C);
    return;
  }
  params_ = DeviceBuffer<float>(be_, table_.total);
  grads_ = DeviceBuffer<float>(be_, table_.total);
  if (precision_ == Precision::BF16) {
    compute_offset_ = cfg_.tie_word_embeddings || table_.layers.empty() ? 0 : table_.layers[0].ln1;
    compute_ = DeviceBuffer<uint16_t>(be_, table_.total - compute_offset_);
  }
}

void LlamaModel::load(const SafetensorsModel& weights) { load_impl(weights, false); }
void LlamaModel::load_growing_vocab(const SafetensorsModel& weights) { load_impl(weights, true); }

TrainableParams LlamaModel::trainable() {
  if (frozen_)
    return {lora_params_.get(), lora_grads_.get(), lora_.total, lora_compute_.get(), nullptr, 0};
  if (sharded_) return {params_.get(), grads_.get(), shard_.count, nullptr, nullptr, 0};
  return {params_.get(), grads_.get(), table_.total, nullptr, compute_.get(), compute_offset_};
}

void LlamaModel::store_frozen(const ParamEntry& e, const float* values) {
  if (frozen_) return frozen_->set(e, values);
  if (!sharded_) return be_.copy(params_.get() + e.offset, values, e.numel * sizeof(float));
  // full_shard: keep the part of the tensor inside this process's range.
  const size_t lo = std::max(e.offset, shard_.begin);
  const size_t hi = std::min(e.offset + e.numel, shard_.begin + shard_.count);
  if (lo < hi)
    be_.copy(params_.get() + (lo - shard_.begin), values + (lo - e.offset), (hi - lo) * 4);
}

std::pair<size_t, size_t> LlamaModel::layer_trainable_range(int64_t l) const {
  if (frozen_) {
    size_t lo = lora_.total, hi = 0;
    for (size_t id : lora_.by_layer[size_t(l)]) {
      const LoraEntry& e = lora_.entries[id];
      lo = std::min(lo, e.a_offset);
      hi = std::max(hi, e.b_offset + size_t(e.out * lora_.spec.r));
    }
    return {std::min(lo, hi), hi};
  }
  const LayerOffsets& o = table_.layers[size_t(l)];
  const size_t end =
      size_t(l) + 1 < table_.layers.size() ? table_.layers[size_t(l) + 1].ln1 : table_.final_norm;
  return {o.ln1, end};
}

void LlamaModel::load_impl(const SafetensorsModel& weights, bool allow_vocab_growth) {
  std::vector<float> staging;
  for (const ParamEntry& e : table_.entries) {
    const TensorInfo& t = weights.get(e.name);
    // Staged: a frozen base converts each tensor on its way in, a shard keeps part of it,
    // and a device the host cannot write receives it by copy.
    const bool staged = frozen_ || sharded_ || !be_.host_accessible();
    if (staged) staging.resize(e.numel);
    float* dst = staged ? staging.data() : params_.get() + e.offset;
    const bool vocab_rows = e.name == "model.embed_tokens.weight" || e.name == "lm_head.weight";
    if (allow_vocab_growth && vocab_rows && t.shape.size() == 2 && t.shape[1] == e.shape[1] &&
        t.shape[0] < e.shape[0]) {
      const int64_t old_rows = t.shape[0], C = e.shape[1];
      convert_to_f32(t.data, t.dtype, dst, size_t(old_rows * C));
      std::vector<double> mean(size_t(C), 0.0);
      for (int64_t r = 0; r < old_rows; ++r)
        for (int64_t c = 0; c < C; ++c) mean[size_t(c)] += dst[r * C + c];
      for (int64_t r = old_rows; r < e.shape[0]; ++r)
        for (int64_t c = 0; c < C; ++c) dst[r * C + c] = float(mean[size_t(c)] / double(old_rows));
      if (staged) store_frozen(e, dst);
      continue;
    }
    LATHE_CHECK(t.shape == e.shape, t.file, ": tensor '", e.name, "' has shape ",
                shape_str(t.shape), " but config.json implies ", shape_str(e.shape),
                ": the weights do not belong to this config");
    convert_to_f32(t.data, t.dtype, dst, e.numel);
    if (staged) store_frozen(e, dst);
  }
  refresh_compute_weights();
}

void LlamaModel::init_random(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> staging;
  for (const ParamEntry& e : table_.entries) {
    const bool is_norm = e.shape.size() == 1;
    const bool staged = frozen_ || sharded_ || !be_.host_accessible();
    float* p = staged ? (staging.resize(e.numel), staging.data()) : params_.get() + e.offset;
    for (size_t i = 0; i < e.numel; ++i) p[i] = is_norm ? 1.0f : normal(rng);
    if (staged) store_frozen(e, p);
  }
  if (frozen_) {
    HostWrite<float> lora(be_, lora_params_.get(), lora_.total);
    init_lora_weights(lora_, lora.get(), seed ^ 0x10a4ull);
    lora.commit();
  }
  refresh_compute_weights();
}

void LlamaModel::refresh_compute_weights() {
  if (sharded_) {  // gathered copies are rebuilt from the updated shards on next use
    shard_.worker->wait_all();
    slots_.clear();
    head_gathered_ = false;
    return;
  }
  if (frozen_) {
    if (!lora_compute_.get()) return;
    be_.copy(lora_compute_.get(), lora_params_.get(), lora_.total * sizeof(float));
    be_.round_to_bf16(lora_compute_.get(), lora_.total);
    return;
  }
  if (!compute_.get()) return;
  const size_t n = table_.total - compute_offset_;
  be_.pack_bf16(compute_.get(), params_.get() + compute_offset_, 1, int64_t(n), int64_t(n));
}

std::vector<TensorToWrite> LlamaModel::export_tensors(DType out_dtype) const {
  LATHE_CHECK(!frozen_,
              "a LoRA model exports its adapter; merge it into the base with lathe merge");
  LATHE_CHECK(
      !sharded_,
      "a full_shard model is exported by all processes together (export_hf_model_parallel)");
  std::vector<TensorToWrite> out;
  for (const ParamEntry& e : table_.entries)
    out.push_back(staged_tensor(e.name, out_dtype, e.shape, be_, params_.get() + e.offset));
  return out;
}

LayerWeights LlamaModel::layer_weights(int64_t l) {
  if (frozen_) return frozen_->layer(l);
  const LayerOffsets& o = table_.layers[size_t(l)];
  if (sharded_) {
    prefetch_layer(l);
    const int s = LayerSlots::of(l);
    shard_.worker->wait(slots_.ready[s]);
    float* w = layer_buf_[s].get();
    auto at = [&](size_t off) { return w + (off - o.ln1); };
    return {at(o.ln1), at(o.wqkv), at(o.wo), at(o.ln2), at(o.wgu), at(o.wd)};
  }
  const float* P = params_.get();
  return {P + o.ln1, weight(o.wqkv), weight(o.wo), P + o.ln2, weight(o.wgu), weight(o.wd)};
}

HeadWeights LlamaModel::head_weights() {
  if (frozen_) return frozen_->head();
  if (sharded_) {
    gather_head();
    shard_.worker->wait(head_ready_);
    return {head_embed_.get(), head_norm_.get(), head_lm_.get()};
  }
  const float* P = params_.get();
  return {P + table_.embed, P + table_.final_norm, weight(table_.lm_head)};
}

void LlamaModel::linear_forward(int64_t l, Linear which, float* y, const float* x, int64_t M,
                                float beta, const float* packed) {
  const LayerWeights w = layer_weights(l);
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int64_t S = cfg_.q_dim() + 2 * cfg_.kv_dim(), HD = cfg_.q_dim();
  auto with_packed = [packed](Weight wt) {
    wt.packed = packed;
    return wt;
  };
  switch (which) {
    case Linear::QKV:
      matmul_xwT(y, x, with_packed(w.wqkv), M, S, C, beta);
      break;
    case Linear::O:
      matmul_xwT(y, x, with_packed(w.wo), M, C, HD, beta);
      break;
    case Linear::GateUp:
      matmul_xwT(y, x, with_packed(w.wgu), M, 2 * I, C, beta);
      break;
    case Linear::Down:
      matmul_xwT(y, x, with_packed(w.wd), M, C, I, beta);
      break;
  }
  lora_forward(l, which, x, y, M, nullptr, false);
}

void LlamaModel::zero_grads() {
  const TrainableParams t = trainable();
  be_.zero(t.grads, t.n * sizeof(float));
}

void LlamaModel::ensure_rope(int64_t T) {
  if (T <= rope_len_) return;
  std::vector<float> t = rope_table(cfg_, T);
  rope_ = DeviceBuffer<float>(be_, t.size());
  be_.copy(rope_.get(), t.data(), t.size() * sizeof(float));
  rope_len_ = T;
}

void LlamaModel::ensure_buffers(int64_t B, int64_t T) {
  const size_t M = size_t(B * T);
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size, H = cfg_.num_attention_heads;
  const int64_t S = cfg_.q_dim() + 2 * cfg_.kv_dim(), HD = cfg_.q_dim();
  B_ = B, T_ = T;
  const size_t sets = checkpointing_ ? 1 : size_t(cfg_.num_hidden_layers);
  acts_.resize(sets);
  for (LayerActs& a : acts_) {
    if (!checkpointing_) a.x_in.ensure(be_, M * C);
    a.rstd1.ensure(be_, M);
    a.qkv.ensure(be_, M * S);
    a.att.ensure(be_, M * HD);
    a.lse.ensure(be_, M * H);
    a.x_mid.ensure(be_, M * C);
    a.rstd2.ensure(be_, M);
    a.gu.ensure(be_, M * 2 * I);
    if (frozen_ && !lora_.entries.empty())
      a.lora_u.ensure(be_, M * size_t(lora_.spec.r) * lora_.by_layer[0].size());
  }
  if (checkpointing_) {
    layer_inputs_.resize(size_t(cfg_.num_hidden_layers));
    for (auto& x : layer_inputs_) x.ensure(be_, M * C);
  }
  xn_.ensure(be_, M * C);
  h_.ensure(be_, M * I);
  x_final_.ensure(be_, M * C);
  xn_final_.ensure(be_, M * C);
  rstd_final_.ensure(be_, M);
  dx_.ensure(be_, M * C);
  dxn_.ensure(be_, M * C);
  dh_.ensure(be_, M * I);
  dgu_.ensure(be_, M * 2 * I);
  datt_.ensure(be_, M * HD);
  dqkv_.ensure(be_, M * S);
  ids_.ensure(be_, M);
  targets_.ensure(be_, M);
  positions_.ensure(be_, M);
  doc_start_.ensure(be_, M);
  ensure_rope(T);
}

void LlamaModel::upload_batch(const Batch& b) {
  LATHE_ASSERT(int64_t(b.input_ids.size()) == b.B * b.T);
  LATHE_ASSERT(b.targets.size() == b.input_ids.size());
  ensure_buffers(b.B, b.T);
  const size_t M = size_t(b.B * b.T);
  for (size_t i = 0; i < M; ++i)
    LATHE_CHECK(b.input_ids[i] >= 0 && b.input_ids[i] < cfg_.vocab_size, "token id ",
                b.input_ids[i], " at position ", i, " is outside the vocabulary (size ",
                cfg_.vocab_size, ")");
  be_.copy(ids_.get(), b.input_ids.data(), M * 4);
  be_.copy(targets_.get(), b.targets.data(), M * 4);
  std::vector<int32_t> pos(M), starts(M, 0);
  for (size_t i = 0; i < M; ++i) pos[i] = int32_t(i % size_t(b.T));
  const int32_t* positions = b.positions.empty() ? pos.data() : b.positions.data();
  const int32_t* doc = b.doc_start.empty() ? starts.data() : b.doc_start.data();
  for (size_t i = 0; i < M; ++i)
    LATHE_CHECK(positions[i] >= 0 && positions[i] < b.T, "position out of range");
  be_.copy(positions_.get(), positions, M * 4);
  be_.copy(doc_start_.get(), doc, M * 4);
  host_targets_ = b.targets;
}

double LlamaModel::forward_backward(const Batch& b, float loss_scale) {
  upload_batch(b);
  const int64_t M = b.B * b.T, C = cfg_.hidden_size, L = cfg_.num_hidden_layers;
  if (sharded_) {  // the head and the first layer arrive together
    gather_head();
    prefetch_layer(0);
  }
  const HeadWeights hw = head_weights();
  float* G = grads_.get();
  float *g_embed = nullptr, *g_norm = norm_dw_.get();
  if (sharded_) {
    g_embed = head_grad_embed_.get(), g_norm = head_grad_norm_.get();
    const size_t VC = size_t(cfg_.vocab_size * cfg_.hidden_size);
    be_.zero(head_grad_embed_.get(), VC * 4);
    be_.zero(head_grad_lm_.get(), VC * 4);
    be_.zero(head_grad_norm_.get(), size_t(cfg_.hidden_size) * 4);
  } else if (G) {
    g_embed = G + table_.embed, g_norm = G + table_.final_norm;
  }

  // Forward. Layer l reads its input from the previous layer's output buffer.
  auto input_of = [&](int64_t l) -> float* {
    return checkpointing_ ? layer_inputs_[size_t(l)].get() : acts_[size_t(l)].x_in.get();
  };
  be_.embedding_forward(input_of(0), ids_.get(), hw.embed, M, C);
  for (int64_t l = 0; l < L; ++l) {
    LayerActs& a = acts_[checkpointing_ ? 0 : size_t(l)];
    float* out = l + 1 < L ? input_of(l + 1) : x_final_.get();
    prefetch_layer(l + 1);
    layer_forward(l, a, input_of(l), out, true);
  }
  be_.rmsnorm_forward(xn_final_.get(), rstd_final_.get(), x_final_.get(), hw.final_norm, M, C,
                      float(cfg_.rms_norm_eps));
  maybe_round(xn_final_.get(), size_t(M * C));

  // Loss and the head's backward, then the layers in reverse.
  const double loss = head_loss_and_grad(b, loss_scale, dxn_.get());
  be_.zero(dx_.get(), size_t(M * C) * sizeof(float));
  be_.rmsnorm_backward(dx_.get(), g_norm, dxn_.get(), x_final_.get(), hw.final_norm,
                       rstd_final_.get(), M, C);
  // Each gradient goes to the other processes as soon as it is final, while the layers
  // below run their backward.
  const size_t VC = size_t(cfg_.vocab_size * cfg_.hidden_size);
  const bool tied = table_.lm_head == table_.embed;
  if (sharded_) {
    reduce_into_shard(table_.final_norm, table_.final_norm + size_t(C), head_grad_norm_.get());
    shard_grad_ready(table_.final_norm, table_.final_norm + size_t(C));
    reduce_into_shard(table_.lm_head, table_.lm_head + VC, head_grad_lm_.get());
    if (!tied) shard_grad_ready(table_.lm_head, table_.lm_head + VC);  // tied: with the embedding
  } else if (G) {
    grad_ready(table_.final_norm, table_.final_norm + size_t(C));
    if (!tied) grad_ready(table_.lm_head, table_.lm_head + VC);  // tied: with the embedding
  }
  for (int64_t l = L - 1; l >= 0; --l) {
    LayerActs& a = acts_[checkpointing_ ? 0 : size_t(l)];
    prefetch_layer(l - 1);
    if (checkpointing_) {
      // Recompute this layer's activations from its saved input.
      layer_forward(l, a, input_of(l), x_final_.get(), true);
    }
    layer_backward(l, a, input_of(l), dx_.get());
    const LayerOffsets& o = table_.layers[size_t(l)];
    if (sharded_) {
      const int s = LayerSlots::of(l);
      grad_free_[s] = reduce_into_shard(o.ln1, o.ln1 + layer_span_, layer_grad_[s].get());
      shard_grad_ready(o.ln1, o.ln1 + layer_span_);
    } else {
      const auto [lo, hi] = layer_trainable_range(l);
      grad_ready(lo, hi);
    }
  }
  if (g_embed) be_.embedding_backward(g_embed, ids_.get(), dx_.get(), M, C);
  if (sharded_) {
    reduce_into_shard(table_.embed, table_.embed + VC, head_grad_embed_.get());
    shard_grad_ready(table_.embed, table_.embed + VC);
    shard_.worker->wait_all();  // grads_ is whole, and every buffer free for the next call
  } else if (G) {
    grad_ready(table_.embed, table_.embed + VC);
  }
  return loss;
}

double LlamaModel::forward(const Batch& b, float* logits) {
  upload_batch(b);
  const int64_t M = b.B * b.T, C = cfg_.hidden_size, V = cfg_.vocab_size,
                L = cfg_.num_hidden_layers;
  if (sharded_) {
    gather_head();
    prefetch_layer(0);
  }
  const HeadWeights hw = head_weights();
  LayerActs& a = acts_[0];
  // Inference needs no saved activations: ping-pong between two residual buffers.
  DeviceBuffer<float> x(be_, size_t(M * C)), y(be_, size_t(M * C));
  be_.embedding_forward(x.get(), ids_.get(), hw.embed, M, C);
  for (int64_t l = 0; l < L; ++l) {
    prefetch_layer(l + 1);
    layer_forward(l, a, x.get(), y.get(), false);
    std::swap(x, y);
  }
  be_.rmsnorm_forward(xn_final_.get(), rstd_final_.get(), x.get(), hw.final_norm, M, C,
                      float(cfg_.rms_norm_eps));
  maybe_round(xn_final_.get(), size_t(M * C));
  // Without a logits buffer (evaluation) the loss is computed chunk by chunk, so a 128K
  // vocabulary never needs B·T·V floats.
  if (!logits) return head_loss_and_grad(b, 1.0f, nullptr);
  // `logits` is host memory: a device writes them to its own buffer, then copies.
  const float* out = logits;
  if (be_.host_accessible()) {
    matmul_xwT(logits, xn_final_.get(), hw.lm_head, M, V, C, 0.0f);
  } else {
    DeviceBuffer<float> dev(be_, size_t(M * V));
    matmul_xwT(dev.get(), xn_final_.get(), hw.lm_head, M, V, C, 0.0f);
    be_.copy(logits, dev.get(), size_t(M * V) * sizeof(float));
  }
  // Loss from the logits without disturbing them.
  double loss = 0;
  for (int64_t i = 0; i < M; ++i) {
    const int32_t t = b.targets[size_t(i)];
    if (t < 0) continue;
    const float* z = out + i * V;
    float mx = *std::max_element(z, z + V);
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(double(z[v] - mx));
    loss += std::log(s) + mx - z[t];
  }
  return loss;
}

}  // namespace lathe
