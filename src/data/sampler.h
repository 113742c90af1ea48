// A deterministic, resumable stream of row indices: epoch after epoch, each epoch in file
// order or in a permutation drawn from (seed, epoch). The position is two integers, so a
// checkpoint restores it exactly. Each process takes every world-th index of the stream.
#pragma once
#include <cstdint>
#include <vector>

namespace lathe {

struct SamplerState {
  uint64_t epoch = 0;
  uint64_t offset = 0;  // positions of this epoch consumed by all processes together
};

class Sampler {
 public:
  Sampler(uint64_t num_rows, bool shuffle, uint64_t seed, int rank = 0, int world = 1);
  uint64_t next();  // the next row index for this rank
  uint64_t peek() const;  // what next() would return, without consuming it
  SamplerState state() const { return state_; }
  void restore(const SamplerState& s);
  uint64_t num_rows() const { return n_; }

 private:
  void build_order();
  uint64_t n_;
  bool shuffle_;
  uint64_t seed_;
  int rank_, world_;
  SamplerState state_;
  std::vector<uint64_t> order_;
};

}  // namespace lathe
