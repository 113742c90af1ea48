#include "generate/kv_cache.h"

#include "core/error.h"

namespace lathe {

KvCache::KvCache(Backend& be, const LlamaConfig& cfg, int64_t slots, int64_t capacity)
    : slots_(slots), capacity_(capacity) {
  LATHE_ASSERT(slots > 0 && capacity > 0);
  per_layer_ = slots * cfg.num_key_value_heads * capacity * cfg.head_dim;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    k_.emplace_back(be, size_t(per_layer_));
    v_.emplace_back(be, size_t(per_layer_));
  }
}

size_t KvCache::bytes() const { return 2 * k_.size() * size_t(per_layer_) * sizeof(float); }

}  // namespace lathe
