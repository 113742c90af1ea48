// Evaluation of a model on held-out rows: token loss and perplexity over every row, and
// generation metrics on the first rows: each row's prompt (the tokens before its first
// trained label) is completed greedily and scored against the row's response (the trained
// tokens, decoded): ROUGE, BLEU, exact match (GSM8K answers after "####", PubMedQA
// yes/no/maybe labels, otherwise the whole stripped text).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "data/input_ids_source.h"
#include "model/llama.h"

namespace lathe {

class Tokenizer;

// The names eval.metrics accepts.
const std::vector<std::string>& eval_metric_names();
// Whether a logged metric improves upward (rouge, bleu, exact_match) or downward (loss, ppl).
bool metric_higher_is_better(const std::string& logged_name);

struct EvalSettings {
  std::vector<std::string> metrics = {"loss"};
  std::string format;            // data.format: picks the exact-match rule
  int64_t batch_size = 4, seq_len = 512;
  bool pad_to_max = false;
  int64_t max_samples = 200;     // rows that are generated for; 0 = all
  int64_t max_new_tokens = 256;
  bool rouge_stemmer = true;
  // Data parallel: process `rank` of `world` takes every world-th row for the loss, and
  // sum_across(values, n) adds them up over the processes (generation runs everywhere).
  int rank = 0, world = 1;
  std::function<void(double*, size_t)> sum_across;
};

struct EvalSample {
  std::string prompt, reference, prediction;
};

struct EvalReport {
  // Logged names: eval_loss, eval_ppl, rouge1, rouge2, rougeL, rougeLsum, bleu, exact_match.
  std::map<std::string, double> metrics;
  std::vector<EvalSample> samples;  // the generated rows
  double loss_seconds = 0, generation_seconds = 0;
  int64_t loss_rows = 0, generated_tokens = 0;
};

// Mean token loss over rows, in order, batch_size rows at a time (0 when no targets).
double eval_loss(LlamaModel& model, const std::vector<TokenRow>& rows, int64_t batch_size,
                 int64_t seq_len, bool pad_to_max);
// Summed token loss and target count over rows first, first + stride, ...
std::pair<double, int64_t> eval_loss_sums(LlamaModel& model, const std::vector<TokenRow>& rows,
                                          int64_t batch_size, int64_t seq_len, bool pad_to_max,
                                          size_t first = 0, size_t stride = 1);

// tokenizer is needed only for generation metrics.
EvalReport evaluate(LlamaModel& model, Backend& be, const Tokenizer* tokenizer,
                    const std::vector<TokenRow>& rows, const EvalSettings& settings);

}  // namespace lathe
