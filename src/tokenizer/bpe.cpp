#include "tokenizer/bpe.h"

#include <algorithm>
#include <functional>

namespace lathe::tok {

void PieceMap::build(const std::vector<std::string>& keys) {
  pool_.clear();
  offs_.assign(keys.size(), 0);
  size_t total = 0;
  for (const auto& k : keys) total += k.size();
  pool_.reserve(total);
  size_t cap = 16;
  while (cap < keys.size() * 2) cap <<= 1;  // load factor <= 0.5
  slots_.assign(cap, Slot{0, 0, -1});
  mask_ = cap - 1;
  for (size_t id = 0; id < keys.size(); ++id) {
    const std::string& k = keys[id];
    offs_[id] = uint32_t(pool_.size());
    pool_ += k;
    if (k.empty() || find(k) >= 0) continue;
    size_t i = hash_bytes(k) & mask_;
    while (slots_[i].id >= 0) i = (i + 1) & mask_;
    slots_[i] = Slot{load_prefix(k), uint32_t(k.size()), int32_t(id)};
  }
}

void PairTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{kEmpty, {kNoRank, -1}});
  mask_ = cap - 1;
  shift_ = 64 - __builtin_ctzll(cap);
  count_ = 0;
  for (const Slot& s : old) {
    if (s.key != kEmpty) insert(int32_t(s.key >> 32), int32_t(uint32_t(s.key)), s.value);
  }
}

void PairTable::grow() { reserve(std::max<size_t>(count_ + 1, slots_.size())); }

void PairTable::insert(int32_t left, int32_t right, PairValue v) {
  if ((count_ + 1) * 2 > slots_.size()) grow();
  const uint64_t key = pack(left, right);
  size_t i = slot_of(key);
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
  if (slots_[i].key == kEmpty) ++count_;
  slots_[i] = Slot{key, v};
}

namespace {

// Below this many symbols the quadratic scan beats the heap: it touches one small
// contiguous array and does no heap bookkeeping. (Measured on Llama 3 words, which are
// almost all shorter; SentencePiece texts split into words stay far below it too.)
constexpr size_t kScanLimit = 48;

void merge_scan(const PairTable& table, int32_t* ids, size_t& n, MergeScratch& s) {
  s.pairs.resize(n);
  PairValue* pv = s.pairs.data();
  for (size_t i = 0; i + 1 < n; ++i) pv[i] = table.find(ids[i], ids[i + 1]);
  while (n > 1) {
    size_t best = 0;
    int32_t best_rank = PairTable::kNoRank;
    for (size_t i = 0; i + 1 < n; ++i) {
      if (pv[i].rank < best_rank) {  // strict: the leftmost of equal ranks wins
        best_rank = pv[i].rank;
        best = i;
      }
    }
    if (best_rank == PairTable::kNoRank) break;
    ids[best] = pv[best].merged;
    // Remove symbol best+1 and the pair that started at it.
    std::copy(ids + best + 2, ids + n, ids + best + 1);
    if (best + 2 < n - 1) std::copy(pv + best + 2, pv + n - 1, pv + best + 1);
    --n;
    if (best + 1 < n) pv[best] = table.find(ids[best], ids[best + 1]);
    if (best > 0) pv[best - 1] = table.find(ids[best - 1], ids[best]);
  }
}

void merge_heap(const PairTable& table, int32_t* ids, size_t& n, MergeScratch& s) {
  s.prev.resize(n);
  s.next.resize(n);
  s.heap.clear();
  // Entry = rank << 32 | left position: the min-heap pops the lowest rank, then the
  // leftmost pair, the same order as the scan.
  auto push = [&](size_t left, size_t right) {
    const PairValue v = table.find(ids[left], ids[right]);
    if (v.rank == PairTable::kNoRank) return;
    s.heap.push_back(uint64_t(uint32_t(v.rank)) << 32 | left);
    std::push_heap(s.heap.begin(), s.heap.end(), std::greater<>());
  };
  for (size_t i = 0; i < n; ++i) {
    s.prev[i] = int32_t(i) - 1;
    s.next[i] = i + 1 < n ? int32_t(i + 1) : -1;
  }
  for (size_t i = 0; i + 1 < n; ++i) {
    const PairValue v = table.find(ids[i], ids[i + 1]);
    if (v.rank != PairTable::kNoRank) s.heap.push_back(uint64_t(uint32_t(v.rank)) << 32 | i);
  }
  std::make_heap(s.heap.begin(), s.heap.end(), std::greater<>());
  constexpr int32_t kDead = -1;
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), std::greater<>());
    const uint64_t top = s.heap.back();
    s.heap.pop_back();
    const size_t left = uint32_t(top);
    const int32_t rank = int32_t(top >> 32);
    // Entries go stale when either symbol has since merged; the pair now at `left` is
    // valid to apply only if it has exactly this rank (then it is the one the entry
    // stands for, or an equal-rank pair at the same position, which sorts identically).
    if (ids[left] == kDead || s.next[left] < 0) continue;
    const size_t right = size_t(s.next[left]);
    const PairValue v = table.find(ids[left], ids[right]);
    if (v.rank != rank) continue;
    ids[left] = v.merged;
    ids[right] = kDead;
    s.next[left] = s.next[right];
    if (s.next[left] >= 0) s.prev[size_t(s.next[left])] = int32_t(left);
    if (s.prev[left] >= 0) push(size_t(s.prev[left]), left);
    if (s.next[left] >= 0) push(left, size_t(s.next[left]));
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0; i = s.next[size_t(i)]) ids[out++] = ids[size_t(i)];
  n = out;
}

}  // namespace

void bpe_merge(const PairTable& table, std::vector<int32_t>& ids, size_t begin,
               MergeScratch& scratch) {
  size_t n = ids.size() - begin;
  if (n < 2) return;
  if (n <= kScanLimit) {
    merge_scan(table, ids.data() + begin, n, scratch);
  } else {
    merge_heap(table, ids.data() + begin, n, scratch);
  }
  ids.resize(begin + n);
}

}  // namespace lathe::tok
