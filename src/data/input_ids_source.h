// Pre-tokenized training rows: one JSON object per line with "input_ids" and optional
// "labels" (-100 marks positions that do not count towards the loss).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lathe {

struct TokenRow {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;  // empty = same as input_ids
};

// Reads every non-blank line of `path`. Throws lathe::Error naming file:line (and column for
// JSON syntax errors) on any malformed row or token id outside [0, vocab_size).
std::vector<TokenRow> read_input_ids_jsonl(const std::string& path, int64_t vocab_size);

}  // namespace lathe
