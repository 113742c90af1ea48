// LlamaModel under full_shard (ZeRO-3): gathering a layer's or the head's parameters from
// their owners, two slots ahead, and reducing their gradients back to the owners.
#include <algorithm>

#include "core/dtype.h"
#include "dist/comm_worker.h"
#include "dist/communicator.h"
#include "model/llama.h"

namespace lathe {

std::vector<std::pair<size_t, size_t>> LlamaModel::pieces(size_t lo, size_t hi) const {
  return split_ranges(shard_ranges(table_.total, shard_.worker->comm().size()), lo, hi);
}

// The jobs below run on the communication thread. Their elementwise passes are plain
// loops on that thread: the backend's kernels fork the training thread's OpenMP team.
uint64_t LlamaModel::gather(size_t lo, size_t hi, float* dst,
                            std::vector<std::pair<size_t, size_t>> round) {
  // This process's part of [lo, hi) starts at s; where its shard begins past hi it holds
  // none of it, sends nothing, and s - shard_.begin would wrap.
  const size_t s = std::clamp(shard_.begin, lo, hi);
  const float* send = s < shard_.begin ? params_.get() : params_.get() + (s - shard_.begin);
  const bool bf16 = precision_ == Precision::BF16;
  return shard_.worker->submit([this, lo, hi, dst, send, bf16, round](Communicator& c) {
    c.allgather_from(send, dst, pieces(lo, hi));
    if (!bf16) return;
    for (const auto& [b, n] : round)
      for (size_t i = b; i < b + n; ++i) dst[i] = bf16_to_f32(f32_to_bf16(dst[i]));
  });
}

// The sum lands straight in grads_: this process first adds what its part already holds
// (earlier micro-batches) to its own contribution, so no reduce buffer is needed.
uint64_t LlamaModel::reduce_into_shard(size_t lo, size_t hi, float* grad) {
  return shard_.worker->submit([this, lo, hi, grad](Communicator& c) {
    const auto p = pieces(lo, hi);
    const auto& mine = p[size_t(c.rank())];
    float* own = piece_in_shard(grads_.get(), shard_.begin, lo, mine);
    for (size_t i = 0; i < mine.second; ++i) grad[mine.first + i] += own[i];
    c.reduce_scatter_sum(grad, own, p);
  });
}

LlamaModel::~LlamaModel() {
  if (sharded_) shard_.worker->wait_all();  // no gather may still be writing into a slot
}

void LlamaModel::prefetch_layer(int64_t l) {
  if (frozen_) return frozen_->prefetch(l);
  if (!sharded_ || l < 0 || l >= int64_t(table_.layers.size())) return;
  if (!slots_.claim(l)) return;
  const LayerOffsets& o = table_.layers[size_t(l)];
  const int s = LayerSlots::of(l);
  slots_.ready[s] = gather(o.ln1, o.ln1 + layer_span_, layer_buf_[s].get(),
                           {{o.wqkv - o.ln1, o.ln2 - o.wqkv},  // the linear weights, not the norms
                            {o.wgu - o.ln1, layer_span_ - (o.wgu - o.ln1)}});
}

float* LlamaModel::layer_grad_buffer(int64_t l) {
  const int s = LayerSlots::of(l);
  shard_.worker->wait(grad_free_[s]);
  be_.zero(layer_grad_[s].get(), layer_span_ * sizeof(float));
  return layer_grad_[s].get();
}

void LlamaModel::gather_head() {
  if (head_gathered_) return;
  const size_t VC = size_t(cfg_.vocab_size * cfg_.hidden_size), C = size_t(cfg_.hidden_size);
  gather(table_.embed, table_.embed + VC, head_embed_.get(), {});
  gather(table_.final_norm, table_.final_norm + C, head_norm_.get(), {});
  head_ready_ = gather(table_.lm_head, table_.lm_head + VC, head_lm_.get(), {{0, VC}});
  head_gathered_ = true;
}

}  // namespace lathe
