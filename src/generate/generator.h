// Text generation: prompts in, completions out, with a KV cache, continuous batching
// (a finished sequence's slot takes the next prompt at once) and HF-style sampling.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "generate/sampling.h"
#include "model/llama.h"

namespace lathe {

class Tokenizer;

struct GenerationOptions {
  int max_new_tokens = 128;
  float temperature = 0;  // 0: greedy
  float top_p = 1;
  float repetition_penalty = 1;
  int top_k = 0;
  std::vector<int32_t> stop_tokens;       // besides EOS; not part of the output
  std::vector<std::string> stop_strings;  // the output text ends before the first one
  uint64_t seed = 0;                      // sequence i draws from sequence_seed(seed, i)
  int batch_size = 8;                     // sequences decoded together
  bool ignore_eos = false;                // run to max_new_tokens (benchmarks)
};

struct Generated {
  std::vector<int32_t> tokens;  // generated ids, without the EOS / stop token that ended them
  std::string text;             // decoded (special tokens skipped), cut before a stop string
  // "eos" (an EOS id), "stop_token", "stop_string", or "length" (max_new_tokens, or the
  // model's context, max_position_embeddings, is full)
  std::string stop_reason;
};

struct GenerationStats {
  int64_t prompts = 0, prefill_tokens = 0, decode_tokens = 0;
  double prefill_s = 0, decode_s = 0;  // forward passes and sampling
  int64_t batch_slots = 0, cache_capacity = 0;
};

// The EOS ids a model folder declares: generation_config.json's eos_token_id (an id or a
// list; Llama 3 instruct lists <|end_of_text|> and <|eot_id|>), else config.json's.
std::vector<int32_t> read_eos_token_ids(const std::string& model_dir);

class Generator {
 public:
  // tokenizer may be null: then outputs have no text, stop strings are refused, and
  // nothing is EOS until set_eos_tokens. Otherwise the tokenizer's EOS stops a sequence.
  Generator(LlamaModel& model, Backend& be, const Tokenizer* tokenizer);
  void set_eos_tokens(std::vector<int32_t> ids) { eos_ = std::move(ids); }
  const std::vector<int32_t>& eos_tokens() const { return eos_; }

  // One completion per prompt (token ids, BOS included if wanted), in prompt order.
  // on_token(i, id) is called for each token appended to completion i as it is produced.
  // Greedy results do not depend on batch_size.
  std::vector<Generated> generate(const std::vector<std::vector<int32_t>>& prompts,
                                  const GenerationOptions& options,
                                  std::function<void(size_t seq, int32_t token)> on_token = {});

  const GenerationStats& stats() const { return stats_; }

 private:
  LlamaModel& model_;
  Backend& be_;
  const Tokenizer* tok_;
  std::vector<int32_t> eos_;
  GenerationStats stats_;
};

}  // namespace lathe
