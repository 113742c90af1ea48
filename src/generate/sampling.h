// Choosing the next token from a row of logits, with Hugging Face transformers' logits
// processors and their order: repetition penalty, then temperature, top-k and top-p, then
// either argmax (temperature 0: greedy) or a draw from the softmax. Each processor edits
// the logits in place so they can be tested one at a time.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace lathe {

struct SamplingParams {
  float temperature = 0;         // 0: greedy (argmax); else logits are divided by it
  int top_k = 0;                 // 0: off; else keep the k largest logits (ties at the k-th kept)
  float top_p = 1;               // 1: off; else keep the smallest set with probability >= p
  float repetition_penalty = 1;  // 1: off; applied to every id seen in prompt or output
};

// Checks ranges; the message names the option (--temperature, ...).
void validate_sampling(const SamplingParams& p);

// A seeded generator whose draws are the same on every platform (std's distributions are
// not specified bit for bit, so uniform() is built from the raw 64-bit output).
class SamplingRng {
 public:
  explicit SamplingRng(uint64_t seed) : gen_(seed) {}
  double uniform() { return double(gen_() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  std::mt19937_64 gen_;
};
// The seed of sequence `index` of a run: sequences draw independently of how they are
// batched, so a prompt's sample does not depend on its neighbours.
uint64_t sequence_seed(uint64_t seed, uint64_t index);

// HF RepetitionPenaltyLogitsProcessor: for each distinct id in `seen`, a positive logit is
// divided by `penalty`, a negative one multiplied (both make the token less likely).
void apply_repetition_penalty(float* logits, int64_t V, const std::vector<int32_t>& seen,
                              float penalty);
void apply_temperature(float* logits, int64_t V, float temperature);
// HF TopKLogitsWarper: logits below the k-th largest become -inf.
void apply_top_k(float* logits, int64_t V, int k);
// HF TopPLogitsWarper: sorted ascending, tokens whose cumulative probability (themselves
// and all smaller) is <= 1 - p become -inf; the most likely token always stays.
void apply_top_p(float* logits, int64_t V, float p);

// The first index of the largest logit (torch.argmax's choice on ties).
int32_t argmax(const float* logits, int64_t V);
// A draw from softmax(logits); -inf logits have probability 0.
int32_t sample_softmax(const float* logits, int64_t V, SamplingRng& rng);

// All of the above in HF's order; `logits` is modified. `seen` is the prompt and the
// tokens generated so far (only read when the repetition penalty is on).
int32_t sample_next(float* logits, int64_t V, const SamplingParams& p,
                    const std::vector<int32_t>& seen, SamplingRng& rng);

}  // namespace lathe
