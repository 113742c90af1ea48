// The model's forward pass for generation: new tokens of several sequences, each at its
// own position, against the keys and values of their earlier tokens in a KV cache.
// It mirrors LlamaModel::layer_forward op for op (including the bf16 rounding of product
// inputs), but attends through the cache and computes logits only for the rows asked for.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "generate/kv_cache.h"
#include "model/llama.h"

namespace lathe {

class LoraBank;

class Decoder {
 public:
  // bank: LoRA adapters that rows may ask for (forward's `adapter`); null for none.
  Decoder(LlamaModel& model, Backend& be, int64_t slots, int64_t capacity,
          const LoraBank* bank = nullptr);

  // Runs M new tokens: ids[m] of slot[m] at position pos[m]. A slot's earlier positions
  // must already be in the cache (from earlier calls or earlier rows of this call); each
  // row's keys and values are added to it. Writes the logits of rows logit_rows[r] into
  // logits[r * V ...] (host memory). Long inputs (prompts) go through in chunks of rows,
  // so activations stay bounded. adapter[m] (when given) is row m's adapter in the bank,
  // -1 for the base model alone.
  void forward(const int32_t* ids, const int32_t* slot, const int32_t* pos, int64_t M,
               const std::vector<int64_t>& logit_rows, float* logits,
               const int32_t* adapter = nullptr);

  KvCache& cache() { return cache_; }
  int64_t vocab_size() const { return model_.config().vocab_size; }

 private:
  void ensure(int64_t rows, int64_t logit_rows);
  void layer(int64_t l, int64_t M, const int32_t* adapter);
  // The fused product `which` of layer l, with the rows' adapters when they have them.
  void linear(int64_t l, Linear which, float* y, const float* x, int64_t M, float beta,
              const int32_t* adapter);
  void maybe_round(float* x, size_t n);
  // Packs every linear weight and the lm_head for the backend's few-row products, where
  // it packs weights (the CPU) and the copy takes at most a quarter of the memory
  // available; otherwise products read the weights as stored.
  void pack_weights();
  const float* packed(int64_t l, Linear which) const;

  LlamaModel& model_;
  Backend& be_;
  const LoraBank* bank_;
  LlamaConfig cfg_;
  KvCache cache_;
  DeviceBuffer<float> rope_;  // [capacity, D] cos | sin
  int64_t rows_ = 0, logit_rows_ = 0;
  DeviceBuffer<float> x_, xn_, rstd_, qkv_, att_, gu_, h_, xl_, logits_;
  DeviceBuffer<int32_t> ids_, slot_, pos_;
  DeviceBuffer<int32_t> wanted_;             // the chunk's rows that need logits, for gather_rows
  std::vector<DeviceBuffer<float>> packed_;  // [layer * 4 + Linear], empty when not packed
  DeviceBuffer<float> packed_head_;
};

}  // namespace lathe
