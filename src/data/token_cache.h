// A binary cache of tokenized rows, keyed by everything that determines them (the data
// files' bytes, the tokenizer files' bytes, the format settings), so `lathe train`
// tokenizes only when one of those changed. Layout (little-endian):
//   "LATHETOK" u32 version u32 reserved u64 key u64 rows u64 tokens
//   u64 offsets[rows + 1]   i32 input_ids[tokens]   i32 labels[tokens]
// Written to a temporary name and renamed, so a reader never sees half a file.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/input_ids_source.h"

namespace lathe {

// 64-bit FNV-1a over a file's bytes, folded into `h` (for cache keys, not security).
uint64_t hash_file(const std::string& path, uint64_t h);
uint64_t hash_text(const std::string& text, uint64_t h);
constexpr uint64_t kHashSeed = 0xcbf29ce484222325ull;

std::string token_cache_path(const std::string& cache_dir, uint64_t key);
void token_cache_write(const std::string& path, uint64_t key, const std::vector<TokenRow>& rows);
// The rows, or nullopt when the file is absent, of another key, or damaged.
std::optional<std::vector<TokenRow>> token_cache_read(const std::string& path, uint64_t key);

// $XDG_CACHE_HOME/lathe/datasets or ~/.cache/lathe/datasets.
std::string default_token_cache_dir();

}  // namespace lathe
