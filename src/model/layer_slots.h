// Two buffers of gathered (or received) layers: layer l lives in slot l % 2, so while one
// layer computes the next one, above in the forward or below in the backward, arrives in
// the other. Every process claims the same layers in the same order, which keeps the
// collectives that fill the slots matched across processes.
#pragma once
#include <cstdint>

namespace lathe {

struct LayerSlots {
  int64_t layer[2] = {-1, -1};
  uint64_t ready[2] = {0, 0};  // the communication ticket that fills each slot

  static int of(int64_t l) { return int(l % 2); }
  // True when layer l must be fetched into its slot now (it is neither there nor on its
  // way); the slot's previous layer ran before this call, so the slot is free.
  bool claim(int64_t l) {
    if (layer[of(l)] == l) return false;
    layer[of(l)] = l;
    return true;
  }
  void clear() { layer[0] = layer[1] = -1; }
};

}  // namespace lathe
