// Training and eval rows for a config: read, rendered by the format's template,
// tokenized with the model folder's tokenizer, and cached (data/token_cache.h) so later
// runs with the same files and settings skip tokenization.
#pragma once
#include <string>
#include <vector>

#include "data/formats.h"
#include "eval/choice_scoring.h"
#include "train/config.h"

namespace lathe {

struct LoadedRows {
  std::vector<TokenRow> rows;
  DataStats stats;
  bool cache_hit = false;
  std::string cache_path;  // "" for input_ids (already tokens)
  double seconds = 0;
};

class Tokenizer;

// `path` is data.train or data.eval; vocab_size checks input_ids rows. `tokenizer`:
// the one to encode with (e.g. extended with special tokens); null = the model folder's.
LoadedRows load_rows(const Config& cfg, const std::string& path, int64_t vocab_size,
                     const Tokenizer* tokenizer = nullptr);

// Multiple-choice items of the rows of `path` (lathe eval --metrics choice_accuracy): the
// prompt as the format renders it, the choices from the row's "choices" list (or yes/no/
// maybe for data.format=pubmedqa), and the gold choice the row's response names. The first
// max_rows rows (0: all). Errors name file:line.
std::vector<ChoiceItem> load_choice_items(const Config& cfg, const std::string& path,
                                          const Tokenizer& tokenizer, int64_t max_rows);

// data.test_split: moves a seeded random share of `rows` (at least one, never all) out and
// returns it; the rest keep their file order.
std::vector<TokenRow> split_eval_rows(std::vector<TokenRow>& rows, double share, uint64_t seed);

}  // namespace lathe
