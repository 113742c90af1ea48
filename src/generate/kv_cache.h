// The keys and values of every layer for a fixed number of sequence slots, so generation
// runs each new token through the model once instead of recomputing the whole prefix.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "model/llama_config.h"

namespace lathe {

class KvCache {
 public:
  // Per layer K and V, each [slots, KV, capacity, D] (the layout attention_decode reads:
  // one KV head's keys are contiguous). fp32 in every precision: the cache holds what the
  // fp32 projections produced, as the full forward's attention sees it.
  KvCache(Backend& be, const LlamaConfig& cfg, int64_t slots, int64_t capacity);

  float* k(int64_t layer) { return k_[size_t(layer)].get(); }
  float* v(int64_t layer) { return v_[size_t(layer)].get(); }
  int64_t slots() const { return slots_; }
  int64_t capacity() const { return capacity_; }
  size_t bytes() const;

 private:
  int64_t slots_, capacity_, per_layer_;
  std::vector<DeviceBuffer<float>> k_, v_;
};

}  // namespace lathe
