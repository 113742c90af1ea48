// Rows of token ids → a padded micro-batch with next-token targets (HF semantics: a row
// truncated to seq_len tokens gives seq_len-1 targets; labels of -100 carry no loss).
#pragma once
#include <cstdint>
#include <vector>

#include "data/input_ids_source.h"
#include "model/batch.h"

namespace lathe {

// Pads to the longest row of the micro-batch (after truncation to seq_len).
Batch make_batch(const std::vector<const TokenRow*>& rows, int64_t seq_len, int32_t pad_id = 0);

}  // namespace lathe
