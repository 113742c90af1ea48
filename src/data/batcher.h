// Rows of token ids → a padded micro-batch with next-token targets (HF semantics: a row
// truncated to seq_len tokens gives seq_len-1 targets; labels of -100 carry no loss).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "data/batch.h"
#include "data/input_ids_source.h"

namespace lathe {

// One row per TokenRow, padded to the longest (after truncation to seq_len), or to
// seq_len when pad_to_max.
Batch make_batch(const std::vector<const TokenRow*>& rows, int64_t seq_len, bool pad_to_max = false,
                 int32_t pad_id = 0);

// Packing: each element of `packed` is one row made of whole documents laid end to end
// (each truncated to seq_len). Targets never cross a document boundary, RoPE positions
// restart at 0 and doc_start marks where each document begins, so attention stays inside
// it: a packed row computes exactly what its documents would alone.
Batch make_packed_batch(const std::vector<std::vector<const TokenRow*>>& packed, int64_t seq_len,
                        bool pad_to_max = false, int32_t pad_id = 0);

// Tokens a row contributes after truncation.
inline int64_t row_tokens(const TokenRow& r, int64_t seq_len) {
  return std::min<int64_t>(seq_len, int64_t(r.input_ids.size()));
}

}  // namespace lathe
