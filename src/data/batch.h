// One micro-batch as the model consumes it: B rows of T tokens, flattened.
#pragma once
#include <cstdint>
#include <vector>

namespace lathe {

struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> input_ids;  // [B*T]
  std::vector<int32_t> targets;    // [B*T], -100 = no loss
  std::vector<int32_t> positions;  // [B*T], RoPE position (restarts at each packed document)
  std::vector<int32_t> doc_start;  // [B*T], position where the token's document begins
  int64_t num_targets() const {
    int64_t n = 0;
    for (int32_t t : targets) n += t >= 0;
    return n;
  }
};

}  // namespace lathe
