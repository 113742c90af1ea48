// Multiple-choice accuracy by log-likelihood: each choice is scored as a continuation of
// the row's prompt, log P(choice | prompt) summed over its tokens, and the most likely
// choice is the model's answer. Tokens are split as lm-eval's loglikelihood requests split
// them, so the two tools score the same tokens: the prompt's trailing whitespace moves to
// the choice, the text prompt + choice is encoded whole without special tokens (no BOS, as
// lm-eval's API models send it), and the continuation is what follows the prompt's own
// token count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/llama.h"

namespace lathe {

class Tokenizer;

struct ChoiceItem {
  std::string prompt;
  std::vector<std::string> choices;
  int gold = -1;  // index of the right choice
};

struct ChoiceResult {
  std::vector<double> logprobs;  // per choice
  int chosen = -1;               // argmax (the first on a tie)
};

// The context and continuation tokens of one (prompt, choice) pair, lm-eval's split.
std::pair<std::vector<int32_t>, std::vector<int32_t>> choice_tokens(const Tokenizer& tokenizer,
                                                                    const std::string& prompt,
                                                                    const std::string& choice);

// Scores every choice of every item with full forward passes (no KV cache). Pairs longer
// than the model's context are an error naming the item.
std::vector<ChoiceResult> score_choices(LlamaModel& model, const Tokenizer& tokenizer,
                                        const std::vector<ChoiceItem>& items);

// The share of items whose chosen choice is the gold one.
double choice_accuracy(const std::vector<ChoiceItem>& items, const std::vector<ChoiceResult>& r);

}  // namespace lathe
