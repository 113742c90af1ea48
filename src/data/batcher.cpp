#include "data/batcher.h"

#include <algorithm>

namespace lathe {

Batch make_batch(const std::vector<const TokenRow*>& rows, int64_t seq_len, bool pad_to_max,
                 int32_t pad_id) {
  std::vector<std::vector<const TokenRow*>> one_each;
  for (const TokenRow* r : rows) one_each.push_back({r});
  return make_packed_batch(one_each, seq_len, pad_to_max, pad_id);
}

Batch make_packed_batch(const std::vector<std::vector<const TokenRow*>>& packed, int64_t seq_len,
                        bool pad_to_max, int32_t pad_id) {
  Batch b;
  b.B = int64_t(packed.size());
  for (const auto& docs : packed) {
    int64_t len = 0;
    for (const TokenRow* r : docs) len += row_tokens(*r, seq_len);
    b.T = std::max(b.T, std::min(len, seq_len));
  }
  if (pad_to_max) b.T = seq_len;
  const size_t M = size_t(b.B * b.T);
  b.input_ids.assign(M, pad_id);
  b.targets.assign(M, -100);
  b.positions.assign(M, 0);
  b.doc_start.assign(M, 0);
  for (int64_t i = 0; i < b.B; ++i) {
    int64_t t0 = 0;  // where the current document starts in the row
    for (const TokenRow* r : packed[size_t(i)]) {
      const int64_t n = std::min(row_tokens(*r, seq_len), b.T - t0);
      const std::vector<int32_t>& labels = r->labels.empty() ? r->input_ids : r->labels;
      for (int64_t t = 0; t < n; ++t) {
        const size_t at = size_t(i * b.T + t0 + t);
        b.input_ids[at] = r->input_ids[size_t(t)];
        if (t + 1 < n) b.targets[at] = labels[size_t(t + 1)];
        b.positions[at] = int32_t(t);
        b.doc_start[at] = int32_t(t0);
      }
      t0 += n;
    }
    // Padding continues the last document's positions so RoPE tables stay in range; it
    // carries no loss and, being after every real token, is never attended to.
    for (int64_t t = t0; t < b.T; ++t) {
      b.positions[size_t(i * b.T + t)] = int32_t(t);
      b.doc_start[size_t(i * b.T + t)] = int32_t(t0 > 0 ? t0 : 0);
    }
  }
  return b;
}

}  // namespace lathe
