#include "eval/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "data/batcher.h"
#include "eval/answer_match.h"
#include "eval/bleu.h"
#include "eval/rouge.h"
#include "generate/generator.h"
#include "generate/stop.h"
#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {

using Clock = std::chrono::steady_clock;

bool wants(const EvalSettings& s, const char* name) {
  return std::find(s.metrics.begin(), s.metrics.end(), name) != s.metrics.end();
}

}  // namespace

const std::vector<std::string>& eval_metric_names() {
  static const std::vector<std::string> names = {"loss", "ppl", "rouge", "bleu", "exact_match"};
  return names;
}

bool metric_higher_is_better(const std::string& name) {
  return !(name == "eval_loss" || name == "eval_ppl" || name == "loss" || name == "ppl");
}

std::pair<double, int64_t> eval_loss_sums(LlamaModel& model, const std::vector<TokenRow>& rows,
                                          int64_t batch_size, int64_t seq_len, bool pad_to_max,
                                          size_t first, size_t stride) {
  double loss = 0;
  int64_t targets = 0;
  std::vector<const TokenRow*> mine;
  for (size_t i = first; i < rows.size(); i += stride) mine.push_back(&rows[i]);
  const size_t B = size_t(batch_size);
  for (size_t i = 0; i < mine.size(); i += B) {
    const std::vector<const TokenRow*> batch(mine.begin() + std::ptrdiff_t(i),
                                             mine.begin() + std::ptrdiff_t(std::min(mine.size(), i + B)));
    const Batch b = make_batch(batch, seq_len, pad_to_max);
    loss += model.forward(b, nullptr);
    targets += b.num_targets();
  }
  return {loss, targets};
}

double eval_loss(LlamaModel& model, const std::vector<TokenRow>& rows, int64_t batch_size,
                 int64_t seq_len, bool pad_to_max) {
  const auto [loss, targets] = eval_loss_sums(model, rows, batch_size, seq_len, pad_to_max);
  return targets > 0 ? loss / double(targets) : 0.0;
}

EvalReport evaluate(LlamaModel& model, Backend& be, const Tokenizer* tokenizer,
                    const std::vector<TokenRow>& rows, const EvalSettings& s) {
  for (const std::string& m : s.metrics)
    LATHE_CHECK(std::find(eval_metric_names().begin(), eval_metric_names().end(), m) !=
                    eval_metric_names().end(),
                "eval.metrics: unknown metric '", m, "'; use loss, ppl, rouge, bleu, exact_match");
  EvalReport r;
  if (wants(s, "loss") || wants(s, "ppl")) {
    const auto t0 = Clock::now();
    auto [sum, targets] = eval_loss_sums(model, rows, s.batch_size, s.seq_len, s.pad_to_max,
                                         size_t(s.rank), size_t(s.world));
    double totals[2] = {sum, double(targets)};
    if (s.sum_across) s.sum_across(totals, 2);
    const double loss = totals[1] > 0 ? totals[0] / totals[1] : 0.0;
    r.loss_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.loss_rows = int64_t(rows.size());
    if (wants(s, "loss")) r.metrics["eval_loss"] = loss;
    if (wants(s, "ppl")) r.metrics["eval_ppl"] = std::exp(loss);
  }
  const bool generate = wants(s, "rouge") || wants(s, "bleu") || wants(s, "exact_match");
  if (!generate || rows.empty()) return r;
  LATHE_CHECK(tokenizer, "generation metrics need the model's tokenizer");

  // Prompt = tokens before the first trained label; reference = the trained tokens.
  const size_t n = s.max_samples > 0 ? std::min(rows.size(), size_t(s.max_samples)) : rows.size();
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> references;
  for (size_t i = 0; i < n; ++i) {
    const TokenRow& row = rows[i];
    LATHE_CHECK(!row.labels.empty(), "eval row ", i, " trains on every token, so it has no "
                "prompt/response split for generation metrics: set data.train_on_prompt=false "
                "with a prompt/response format (alpaca, samsum, gsm8k, pubmedqa, chat, template)");
    size_t first = 0;
    while (first < row.labels.size() && row.labels[first] < 0) ++first;
    LATHE_CHECK(first > 0 && first < row.labels.size(), "eval row ", i,
                " has no prompt or no response tokens: cannot score generation on it");
    prompts.emplace_back(row.input_ids.begin(), row.input_ids.begin() + std::ptrdiff_t(first));
    std::vector<int32_t> response;
    for (size_t j = first; j < row.labels.size(); ++j)
      if (row.labels[j] >= 0) response.push_back(row.labels[j]);
    // Decoded as a continuation of the prompt, exactly as generated text is.
    references.push_back(completion_text(*tokenizer, prompts.back(), response));
  }
  const auto t0 = Clock::now();
  Generator gen(model, be, tokenizer);
  GenerationOptions go;
  go.max_new_tokens = int(s.max_new_tokens);
  go.batch_size = int(std::max<int64_t>(1, s.batch_size));
  const std::vector<Generated> outs = gen.generate(prompts, go);
  r.generation_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<std::string> predictions;
  for (size_t i = 0; i < outs.size(); ++i) {
    predictions.push_back(outs[i].text);
    r.generated_tokens += int64_t(outs[i].tokens.size());
    r.samples.push_back({tokenizer->decode(prompts[i], false), references[i], outs[i].text});
  }
  if (wants(s, "rouge")) {
    const RougeCorpus c = rouge_corpus(predictions, references, s.rouge_stemmer);
    r.metrics["rouge1"] = c.rouge1;
    r.metrics["rouge2"] = c.rouge2;
    r.metrics["rougeL"] = c.rouge_l;
    r.metrics["rougeLsum"] = c.rouge_lsum;
  }
  if (wants(s, "bleu")) r.metrics["bleu"] = corpus_bleu(predictions, references).score;
  if (wants(s, "exact_match")) {
    double em = 0;
    if (s.format == "gsm8k") {
      em = gsm8k_accuracy(predictions, references);
    } else if (s.format == "pubmedqa") {
      em = pubmedqa_accuracy(predictions, references);
    } else {
      for (size_t i = 0; i < predictions.size(); ++i) em += exact_match(predictions[i], references[i]);
      em /= double(std::max<size_t>(1, predictions.size()));
    }
    r.metrics["exact_match"] = em;
  }
  return r;
}

}  // namespace lathe
