#include "model/frozen_base.h"

#include <algorithm>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "dist/comm_worker.h"
#include "model/llama.h"
#include "model/nf4.h"

namespace lathe {

BaseDtype base_dtype_from_name(const std::string& name) {
  if (name == "fp32") return BaseDtype::F32;
  if (name == "bf16") return BaseDtype::BF16;
  if (name == "nf4") return BaseDtype::NF4;
  fail("unknown frozen-base dtype '", name, "': use fp32, bf16 or nf4");
}

const char* base_dtype_name(BaseDtype d) {
  return d == BaseDtype::F32 ? "fp32" : d == BaseDtype::BF16 ? "bf16" : "nf4";
}

FrozenBase::FrozenBase(const LlamaConfig& cfg, const ParamTable& table, Backend& be,
                       BaseDtype dtype, bool double_quant, bool round_bf16, CommWorker* shard)
    : cfg_(cfg),
      table_(table),
      be_(be),
      dtype_(dtype),
      double_quant_(double_quant),
      round_bf16_(round_bf16) {
  const size_t L = table_.layers.size();
  LATHE_CHECK(L > 0, "a LoRA base needs at least one layer");
  layer_span_ = L > 1 ? table_.layers[1].ln1 - table_.layers[0].ln1
                      : table_.final_norm - table_.layers[0].ln1;
  if (shard && shard->comm().size() > 1) {
    worker_ = shard;
    rank_ = shard->comm().rank();
    world_ = shard->comm().size();
  }
  const size_t C = size_t(cfg_.hidden_size), V = size_t(cfg_.vocab_size);
  stored_.resize(L);
  norms_.resize(L);
  for (auto& b : norms_) b = DeviceBuffer<float>(be_, 2 * C);
  if (dtype_ == BaseDtype::F32) {
    layer_f32_.resize(L);
    for (size_t l = 0; l < L; ++l)
      if (owns(int64_t(l))) layer_f32_[l] = DeviceBuffer<float>(be_, layer_span_);
  }
  if (worker_) {
    // Every layer has the same tensors at the same places: the slots take layer 0's shape.
    for (int s = 0; s < 2; ++s) {
      if (dtype_ == BaseDtype::F32) {
        slot_f32_[s] = DeviceBuffer<float>(be_, layer_span_);
        continue;
      }
      for (const ParamEntry& e : table_.entries)
        if (is_linear(e) && layer_of(e.offset) == 0)
          slot_stored_[s].push_back(empty_stored(e.numel, e.offset - table_.layers[0].ln1));
    }
  }
  embed_ = DeviceBuffer<float>(be_, V * C);
  final_norm_ = DeviceBuffer<float>(be_, C);
  if (!cfg_.tie_word_embeddings) lm_head_ = DeviceBuffer<float>(be_, V * C);
  // bf16 training reads a bf16 or NF4 layer as bf16 bits (a bf16 base's as stored); NF4
  // expands to fp32 first, as does a base that fp32 products read.
  if (dtype_ == BaseDtype::NF4 || (dtype_ == BaseDtype::BF16 && !bits()))
    scratch_ = DeviceBuffer<float>(be_, layer_span_);
  if (bits()) scratch16_ = DeviceBuffer<uint16_t>(be_, layer_span_);
}

bool FrozenBase::is_linear(const ParamEntry& e) const {
  return e.shape.size() == 2 && e.name.find(".layers.") != std::string::npos;
}

int64_t FrozenBase::layer_of(size_t offset) const {
  return int64_t((offset - table_.layers[0].ln1) / layer_span_);
}

FrozenBase::~FrozenBase() {
  if (worker_) worker_->wait_all();  // no broadcast may still be writing into a slot
}

// Buffers of the sizes set() gives a tensor of numel weights.
FrozenBase::Stored FrozenBase::empty_stored(size_t numel, size_t layer_offset) {
  Stored s;
  s.numel = numel;
  s.layer_offset = layer_offset;
  if (dtype_ == BaseDtype::BF16) {
    s.bf16 = DeviceBuffer<uint16_t>(be_, numel);
    return s;
  }
  s.blocks = (numel + size_t(kNf4Block) - 1) / size_t(kNf4Block);
  s.codes = DeviceBuffer<uint8_t>(be_, (numel + 1) / 2);
  if (double_quant_) {
    s.absmax_q = DeviceBuffer<uint8_t>(be_, s.blocks);
    s.lo_step =
        DeviceBuffer<float>(be_, 2 * ((s.blocks + size_t(kScaleGroup) - 1) / size_t(kScaleGroup)));
    absmax_scratch_.ensure(be_, s.blocks);
  } else {
    s.absmax = DeviceBuffer<float>(be_, s.blocks);
  }
  return s;
}

void FrozenBase::prefetch(int64_t l) {
  if (!worker_ || l < 0 || l >= int64_t(table_.layers.size())) return;
  if (!slots_.claim(l)) return;
  const int slot = LayerSlots::of(l);
  const int root = int(l % world_);
  std::vector<std::pair<void*, size_t>> parts;  // what the owner sends, in the same order
  if (dtype_ == BaseDtype::F32) {
    parts.emplace_back(root == rank_ ? layer_f32_[size_t(l)].get() : slot_f32_[slot].get(),
                       layer_span_ * sizeof(float));
  } else {
    std::vector<Stored>& from = root == rank_ ? stored_[size_t(l)] : slot_stored_[slot];
    LATHE_CHECK(from.size() == slot_stored_[slot].size(), "layer ", l, " of the frozen base has ",
                from.size(), " linear weights where layer 0 has ", slot_stored_[slot].size());
    for (Stored& s : from) {
      parts.emplace_back(s.bf16.get(), s.bf16.size() * 2);
      parts.emplace_back(s.codes.get(), s.codes.size());
      parts.emplace_back(s.absmax.get(), s.absmax.size() * 4);
      parts.emplace_back(s.absmax_q.get(), s.absmax_q.size());
      parts.emplace_back(s.lo_step.get(), s.lo_step.size() * 4);
    }
  }
  slots_.ready[slot] = worker_->submit([parts, root](Communicator& c) {
    for (const auto& [p, bytes] : parts)
      if (bytes > 0) c.broadcast(p, bytes, root);
  });
}

void FrozenBase::set(const ParamEntry& e, const float* values) {
  auto put = [&](float* dst) {
    be_.copy(dst, values, e.numel * sizeof(float));
    if (round_bf16_ && e.shape.size() == 2) be_.round_to_bf16(dst, e.numel);
  };
  if (e.offset == table_.embed) {
    be_.copy(embed_.get(), values, e.numel * sizeof(float));
    // Tied, the table is also the head, which products read.
    if (round_bf16_ && cfg_.tie_word_embeddings) be_.round_to_bf16(embed_.get(), e.numel);
    return;
  }
  if (e.offset == table_.final_norm) return put(final_norm_.get());
  if (!cfg_.tie_word_embeddings && e.offset == table_.lm_head) return put(lm_head_.get());
  const int64_t l = layer_of(e.offset);
  const LayerOffsets& o = table_.layers[size_t(l)];
  const size_t rel = e.offset - o.ln1;
  if (!is_linear(e))
    return put(norms_[size_t(l)].get() + (e.offset == o.ln1 ? 0 : cfg_.hidden_size));
  if (!owns(l)) return;  // its owner keeps it
  if (dtype_ == BaseDtype::F32) return put(layer_f32_[size_t(l)].get() + rel);

  Stored s;
  s.numel = e.numel;
  s.layer_offset = rel;
  if (dtype_ == BaseDtype::BF16) {
    std::vector<uint16_t> bits(e.numel);  // on the host: `values` are host memory
    for (size_t i = 0; i < e.numel; ++i) bits[i] = f32_to_bf16(values[i]);
    s.bf16 = DeviceBuffer<uint16_t>(be_, e.numel);
    be_.copy(s.bf16.get(), bits.data(), e.numel * 2);
  } else {
    const Nf4Tensor q = quantize_nf4(values, e.numel);
    s.blocks = q.absmax.size();
    s.codes = DeviceBuffer<uint8_t>(be_, q.codes.size());
    be_.copy(s.codes.get(), q.codes.data(), q.codes.size());
    if (double_quant_) {
      const Log8Scales d = quantize_log8(q.absmax);
      s.absmax_q = DeviceBuffer<uint8_t>(be_, d.q.size());
      be_.copy(s.absmax_q.get(), d.q.data(), d.q.size());
      s.lo_step = DeviceBuffer<float>(be_, d.lo_step.size());
      be_.copy(s.lo_step.get(), d.lo_step.data(), d.lo_step.size() * 4);
      absmax_scratch_.ensure(be_, s.blocks);
    } else {
      s.absmax = DeviceBuffer<float>(be_, s.blocks);
      be_.copy(s.absmax.get(), q.absmax.data(), s.blocks * 4);
    }
  }
  auto& list = stored_[size_t(l)];
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const Stored& x) { return x.layer_offset == rel; }),
             list.end());
  list.push_back(std::move(s));
  // Sorted by place, the order in which an owner broadcasts them and the slots receive.
  std::sort(list.begin(), list.end(),
            [](const Stored& a, const Stored& b) { return a.layer_offset < b.layer_offset; });
  scratch_layer_ = -1;
}

LayerWeights FrozenBase::layer(int64_t l) {
  const LayerOffsets& o = table_.layers[size_t(l)];
  const float* norms = norms_[size_t(l)].get();
  prefetch(l);  // every process, the owner included, takes part in the broadcast
  const std::vector<Stored>* stored = &stored_[size_t(l)];
  float* f32 = dtype_ == BaseDtype::F32 ? layer_f32_[size_t(l)].get() : nullptr;
  if (!owns(l)) {
    const int slot = LayerSlots::of(l);
    worker_->wait(slots_.ready[slot]);
    stored = &slot_stored_[slot];
    if (dtype_ == BaseDtype::F32) f32 = slot_f32_[slot].get();
  }
  float* base = dtype_ == BaseDtype::F32 ? f32 : scratch_.get();
  if (dtype_ != BaseDtype::F32 && scratch_layer_ != l) {
    for (const Stored& s : *stored) {
      // base is null where bf16 bits are copied as they are (no fp32 scratch): only
      // offset it where it is written.
      float* dst = base ? base + s.layer_offset : nullptr;
      if (dtype_ == BaseDtype::BF16 && bits()) {
        be_.copy(scratch16_.get() + s.layer_offset, s.bf16.get(), s.numel * 2);
      } else if (dtype_ == BaseDtype::BF16) {
        be_.dequantize_bf16(dst, s.bf16.get(), s.numel);
      } else {
        const float* absmax = s.absmax.get();
        if (double_quant_) {
          be_.dequantize_log8(absmax_scratch_.get(), s.absmax_q.get(), s.lo_step.get(), s.blocks,
                              kScaleGroup);
          absmax = absmax_scratch_.get();
        }
        be_.dequantize_nf4(dst, s.codes.get(), absmax, s.numel, kNf4Block);
        if (bits()) {
          const auto n = int64_t(s.numel);
          be_.pack_bf16(scratch16_.get() + s.layer_offset, dst, 1, n, n);
        } else if (round_bf16_) {
          be_.round_to_bf16(dst, s.numel);
        }
      }
    }
    scratch_layer_ = l;
  }
  auto at = [&](size_t off) -> Weight {
    if (bits()) return Weight::bits(scratch16_.get() + (off - o.ln1));
    return base + (off - o.ln1);
  };
  return {norms, at(o.wqkv), at(o.wo), norms + cfg_.hidden_size, at(o.wgu), at(o.wd)};
}

HeadWeights FrozenBase::head() const {
  return {embed_.get(), final_norm_.get(),
          cfg_.tie_word_embeddings ? embed_.get() : lm_head_.get()};
}

FrozenBaseBytes FrozenBase::bytes() const {
  FrozenBaseBytes b;
  for (const ParamEntry& e : table_.entries)
    if (is_linear(e)) b.linear_params += e.numel;
  for (const auto& list : stored_)
    for (const Stored& s : list)
      b.linear += s.bf16.size() * 2 + s.codes.size() + s.absmax.size() * 4 + s.absmax_q.size() +
                  s.lo_step.size() * 4;
  if (dtype_ == BaseDtype::F32) {
    size_t owned = 0;
    for (const auto& x : layer_f32_) owned += x.size() > 0;
    b.linear = b.linear_params * 4 / table_.layers.size() * owned;
  }
  b.other = (embed_.size() + final_norm_.size() + lm_head_.size()) * 4;
  for (const auto& n : norms_) b.other += n.size() * 4;
  return b;
}

}  // namespace lathe
