#include "data/sampler.h"

#include <numeric>

#include "core/error.h"

namespace lathe {
namespace {

// splitmix64: a fixed, portable generator (std::shuffle's algorithm differs between
// standard libraries, and resumed runs must draw the same permutation anywhere).
uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

Sampler::Sampler(uint64_t num_rows, bool shuffle, uint64_t seed, int rank, int world)
    : n_(num_rows), shuffle_(shuffle), seed_(seed), rank_(rank), world_(world) {
  LATHE_CHECK(n_ > 0, "the dataset has no rows");
  build_order();
}

void Sampler::build_order() {
  order_.resize(n_);
  std::iota(order_.begin(), order_.end(), 0);
  if (!shuffle_) return;
  uint64_t s = seed_ * 0x100000001b3ull + state_.epoch;
  for (uint64_t i = n_ - 1; i > 0; --i) {
    const uint64_t j = splitmix64(s) % (i + 1);
    std::swap(order_[i], order_[j]);
  }
}

uint64_t Sampler::next() {
  // The processes walk one global stream in rounds of `world` positions; rank r takes
  // position r of each round. Every rank's state is the round's start, so a checkpoint
  // written by any rank resumes on any number of processes.
  const uint64_t target = state_.offset + uint64_t(rank_);
  uint64_t row;
  if (target < n_) {
    row = order_[target];
  } else {  // a round that runs past the end of the epoch continues into the next one
    Sampler next_epoch = *this;
    next_epoch.state_ = {state_.epoch + 1, 0};
    next_epoch.build_order();
    row = next_epoch.order_[(target - n_) % n_];
  }
  state_.offset += uint64_t(world_);
  if (state_.offset >= n_) {
    state_.epoch++;
    state_.offset -= n_;
    build_order();
  }
  return row;
}

uint64_t Sampler::peek() const {
  // Rare (once per packed row), so simply run next() on a copy.
  Sampler copy = *this;
  return copy.next();
}

void Sampler::restore(const SamplerState& s) {
  LATHE_CHECK(s.offset <= n_, "checkpoint's data position (", s.offset,
              ") is past the end of the dataset (", n_,
              " rows): the data changed since the checkpoint was written");
  state_ = s;
  if (state_.offset == n_) state_.epoch++, state_.offset = 0;  // written at an epoch's end
  build_order();
}

}  // namespace lathe
