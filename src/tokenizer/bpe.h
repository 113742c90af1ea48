// The BPE core shared by both tokenizer kinds: a string -> id table, a (left, right) ->
// (rank, merged) pair table, and the merge loop over a sequence of token ids.
//
// Both kinds reduce to the same rule: repeatedly merge the adjacent pair with the lowest
// rank, leftmost first on ties. HF tokenizer.json ranks are merge-list positions;
// SentencePiece ranks come from piece scores (higher score = lower rank, equal scores
// share a rank, so the leftmost wins as in sentencepiece's agenda); tiktoken ranks are
// the merged token's own rank, shared by all splits of it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lathe::tok {

inline uint64_t hash_bytes(std::string_view s) {
  // 8 bytes at a time with a multiply-xorshift mix: pieces are short, and this is the
  // inner loop of the whole-word lookup.
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xC2B2AE3D27D4EB4Full);
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    __builtin_memcpy(&w, p, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    __builtin_memcpy(&w, p, n);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  h *= 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 29);
}

// Open-addressing map from byte strings to ids. Keys live in one pool; each slot also
// holds the key's length and first 8 bytes, so a lookup of a key up to 8 bytes long (most
// words) never touches the pool, and longer ones compare the pool only past the prefix.
class PieceMap {
 public:
  // keys[id] -> id; empty keys are left out. Later duplicates do not replace earlier ones.
  void build(const std::vector<std::string>& keys);
  int32_t find(std::string_view key) const {
    if (slots_.empty() || key.empty()) return -1;
    const uint64_t prefix = load_prefix(key);
    const uint32_t len = uint32_t(key.size());
    for (size_t i = hash_bytes(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.prefix == prefix && s.len == len &&
          (len <= 8 || __builtin_memcmp(key.data() + 8, pool_.data() + offs_[size_t(s.id)] + 8,
                                        len - 8) == 0)) {
        return s.id;
      }
    }
  }

 private:
  static uint64_t load_prefix(std::string_view k) {
    uint64_t w = 0;
    __builtin_memcpy(&w, k.data(), k.size() < 8 ? k.size() : 8);
    return w;
  }
  struct Slot {
    uint64_t prefix;
    uint32_t len;
    int32_t id;
  };
  std::string pool_;
  std::vector<uint32_t> offs_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

struct PairValue {
  int32_t rank;
  int32_t merged;
};

// (left id, right id) -> (rank, merged id), open addressing on the packed 64-bit key.
class PairTable {
 public:
  void reserve(size_t n);
  // A pair inserted twice keeps the later value, as HF's merge map does.
  void insert(int32_t left, int32_t right, PairValue v);
  PairValue find(int32_t left, int32_t right) const {
    if (count_ == 0) return {kNoRank, -1};
    const uint64_t key = pack(left, right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return s.value;
      if (s.key == kEmpty) return {kNoRank, -1};
    }
  }
  size_t size() const { return count_; }
  static constexpr int32_t kNoRank = INT32_MAX;

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key;
    PairValue value;
  };
  static uint64_t pack(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }
  size_t slot_of(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
  void grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
  int shift_ = 64;
};

// Buffers one encode call reuses for every word.
struct MergeScratch {
  std::vector<PairValue> pairs;
  std::vector<int32_t> prev, next;
  std::vector<uint64_t> heap;
};

// Merges ids[begin..end) in place by rank and shrinks ids to the result.
// Short words use an O(n^2) scan over a flat array (fastest below a few dozen symbols);
// long ones (a SentencePiece text without word splits) a heap over a linked list,
// O(n log n).
void bpe_merge(const PairTable& pairs, std::vector<int32_t>& ids, size_t begin,
               MergeScratch& scratch);

}  // namespace lathe::tok
