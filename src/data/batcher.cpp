#include "data/batcher.h"

#include <algorithm>

namespace lathe {

Batch make_batch(const std::vector<const TokenRow*>& rows, int64_t seq_len, int32_t pad_id) {
  Batch b;
  b.B = int64_t(rows.size());
  for (const TokenRow* r : rows) b.T = std::max<int64_t>(b.T, std::min<int64_t>(seq_len, r->input_ids.size()));
  const size_t M = size_t(b.B * b.T);
  b.input_ids.assign(M, pad_id);
  b.targets.assign(M, -100);
  for (int64_t i = 0; i < b.B; ++i) {
    const TokenRow& r = *rows[size_t(i)];
    const int64_t n = std::min<int64_t>(seq_len, r.input_ids.size());
    const std::vector<int32_t>& labels = r.labels.empty() ? r.input_ids : r.labels;
    for (int64_t t = 0; t < n; ++t) {
      b.input_ids[size_t(i * b.T + t)] = r.input_ids[size_t(t)];
      if (t + 1 < n) b.targets[size_t(i * b.T + t)] = labels[size_t(t + 1)];
    }
  }
  return b;
}

}  // namespace lathe
