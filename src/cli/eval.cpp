// lathe eval CONFIG [overrides] --metrics loss,ppl,rouge,bleu,exact_match,choice_accuracy: evaluate
// the model of a config (model.path, plus peft.adapter for a LoRA adapter) on its eval rows
// (data.eval, or the data.test_split share of data.train, or --data).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend/select.h"
#include "cli/verbs.h"
#include "core/error.h"
#include "core/json.h"
#include "eval/choice_scoring.h"
#include "eval/evaluator.h"
#include "tokenizer/tokenizer.h"
#include "train/config.h"
#include "train/datasets.h"
#include "train/eval_settings.h"
#include "train/model_loader.h"

namespace lathe::cli {
namespace {

struct EvalOptions {
  std::string config, metrics, data, samples, device;
  std::vector<std::string> overrides;
  int64_t max_samples = -1, max_new_tokens = -1;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int run_eval(const EvalOptions& o) {
  std::vector<std::string> overrides = o.overrides;
  Config cfg = load_config(o.config, overrides);
  LATHE_CHECK(!cfg.model.path.empty(), "model.path is not set: give the HF model folder");
  if (!o.metrics.empty()) cfg.eval.metrics = split_list(o.metrics);
  if (o.max_samples >= 0) cfg.eval.max_samples = o.max_samples;
  if (o.max_new_tokens > 0) cfg.eval.max_new_tokens = o.max_new_tokens;
  // An adapter alone means LoRA: the base stays as stored (no quantization) unless asked.
  if (!cfg.peft.adapter.empty() && cfg.peft.method == "none") cfg.peft.method = "lora";
  cfg.train.activation_checkpointing = false;

  if (!o.device.empty()) cfg.train.device = o.device;
  auto be = make_backend(cfg.train.device, int(cfg.train.threads));
  std::fprintf(stderr, "device: %s\n", be->description().c_str());
  const LlamaConfig mc = llama_config_from_json_file(cfg.model.path + "/config.json");
  std::unique_ptr<Tokenizer> tok = Tokenizer::load(cfg.model.path);
  // choice_accuracy reads the rows as text (prompt, choices, answer), not as training rows.
  const auto choice =
      std::find(cfg.eval.metrics.begin(), cfg.eval.metrics.end(), "choice_accuracy");
  const bool choices = choice != cfg.eval.metrics.end();
  if (choices) cfg.eval.metrics.erase(choice);
  std::vector<TokenRow> rows;
  std::string source;
  if (cfg.eval.metrics.empty()) {
    source = !o.data.empty() ? o.data : cfg.data.eval;
  } else if (!o.data.empty()) {
    rows = load_rows(cfg, o.data, mc.vocab_size, tok.get()).rows, source = o.data;
  } else if (!cfg.data.eval.empty()) {
    rows = load_rows(cfg, cfg.data.eval, mc.vocab_size, tok.get()).rows, source = cfg.data.eval;
  } else {
    LATHE_CHECK(!cfg.data.train.empty() && cfg.data.test_split > 0,
                "no eval rows: set data.eval, or data.train with data.test_split, or pass --data");
    std::vector<TokenRow> train = load_rows(cfg, cfg.data.train, mc.vocab_size, tok.get()).rows;
    rows = split_eval_rows(train, cfg.data.test_split, cfg.train.seed);
    source = cfg.data.train + " (test_split)";
  }
  std::unique_ptr<LlamaModel> model = load_model(cfg, mc, *be, false);

  const EvalSettings es = eval_settings(cfg);
  EvalReport r;
  if (!es.metrics.empty()) r = evaluate(*model, *be, tok.get(), rows, es);
  std::vector<ChoiceItem> items;
  std::vector<ChoiceResult> scored;
  if (choices) {
    LATHE_CHECK(!source.empty() && (!o.data.empty() || !cfg.data.eval.empty()),
                "choice_accuracy reads a file of rows: pass --data or set data.eval");
    items = load_choice_items(cfg, source, *tok, cfg.eval.max_samples);
    scored = score_choices(*model, *tok, items);
    r.metrics["choice_accuracy"] = choice_accuracy(items, scored);
  }

  if (!o.samples.empty()) {
    // RUN/samples/NAME.jsonl is where `lathe dashboard RUN` finds them: make the folder.
    const std::filesystem::path parent = std::filesystem::path(o.samples).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    std::ofstream f(o.samples);
    LATHE_CHECK(f, "cannot write ", o.samples);
    for (const EvalSample& s : r.samples)
      f << nlohmann::json{{"prompt", s.prompt},
                          {"reference", s.reference},
                          {"prediction", s.prediction}}
               .dump()
        << "\n";
    for (size_t i = 0; i < items.size(); ++i)
      f << nlohmann::json{{"prompt", items[i].prompt},
                          {"choices", items[i].choices},
                          {"reference", items[i].choices[size_t(items[i].gold)]},
                          {"prediction", items[i].choices[size_t(scored[i].chosen)]},
                          {"logprobs", scored[i].logprobs}}
               .dump()
        << "\n";
  }
  nlohmann::json j = {{"model", cfg.model.path},
                      {"data", source},
                      {"rows", rows.size()},
                      {"generated_rows", r.samples.size()}};
  if (choices) j["choice_rows"] = items.size();
  if (!cfg.peft.adapter.empty()) j["adapter"] = cfg.peft.adapter;
  for (const auto& [k, v] : r.metrics) j[k] = v;
  std::fprintf(stderr, "eval: %zu rows (loss %.1fs), %zu generated (%lld tokens, %.1fs)\n",
               rows.size(), r.loss_seconds, r.samples.size(),
               static_cast<long long>(r.generated_tokens), r.generation_seconds);
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

Action add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate a model (or base + adapter): loss, perplexity, ROUGE, BLEU, exact match");
  auto o = std::make_shared<EvalOptions>();
  cmd->add_option("config", o->config, "YAML config (model.path, data.*, peft.adapter, eval.*)")
      ->required();
  cmd->add_option("overrides", o->overrides, "section.key=value overrides");
  cmd->add_option(
      "--metrics", o->metrics,
      "comma-separated: loss,ppl,rouge,bleu,exact_match, and choice_accuracy (multiple choice "
      "by log-likelihood; --data or data.eval rows) (default: eval.metrics)");
  cmd->add_option("--data", o->data, "jsonl to evaluate on instead of data.eval");
  cmd->add_option("--device", o->device,
                  "cpu, cuda or auto; overrides train.device (default: the config's, auto)");
  cmd->add_option("--max-samples", o->max_samples, "rows to generate for (0 = all)");
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "tokens generated per row");
  cmd->add_option("--samples", o->samples,
                  "write prompt/reference/prediction per row to this jsonl (lathe dashboard RUN "
                  "shows RUN/samples/*.jsonl)");
  return [o]() { return run_eval(*o); };
}

}  // namespace lathe::cli
