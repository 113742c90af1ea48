// lathe prep CONFIG.yaml [overrides]: tokenize and cache the train and eval data ahead of
// training, and report what the data holds.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/verbs.h"
#include "core/error.h"
#include "model/llama_config.h"
#include "train/config.h"
#include "train/datasets.h"

namespace lathe::cli {
namespace {

void report(const char* what, const LoadedRows& d) {
  std::printf("%s: %lld rows, %lld tokens, %lld with loss; %lld truncated, %lld dropped, %lld bad rows skipped\n",
              what, static_cast<long long>(d.stats.rows), static_cast<long long>(d.stats.tokens),
              static_cast<long long>(d.stats.targets), static_cast<long long>(d.stats.truncated),
              static_cast<long long>(d.stats.dropped), static_cast<long long>(d.stats.skipped_bad));
  std::printf("  %.3fs, %.0f rows/s, %.0f tokens/s%s%s\n", d.seconds, double(d.stats.rows) / d.seconds,
              double(d.stats.tokens) / d.seconds,
              d.cache_path.empty() ? "" : (d.cache_hit ? "; cache hit: " : "; cached to "),
              d.cache_path.c_str());
  if (!d.stats.first_bad.empty()) std::printf("  first skipped row: %s\n", d.stats.first_bad.c_str());
}

}  // namespace

Action add_prep(CLI::App& app) {
  auto* cmd = app.add_subcommand("prep", "Tokenize and cache the data of a config; report rows, tokens and drops");
  auto config = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("config", *config, "YAML config file")->required();
  cmd->add_option("overrides", *overrides, "section.key=value overrides");
  return [config, overrides]() {
    const Config cfg = load_config(*config, *overrides);
    LATHE_CHECK(!cfg.model.path.empty(), "model.path is not set: the tokenizer comes from the model folder");
    LATHE_CHECK(!cfg.data.train.empty(), "data.train is not set");
    const LlamaConfig mc = llama_config_from_json_file(cfg.model.path + "/config.json");
    report("train", load_rows(cfg, cfg.data.train, mc.vocab_size));
    if (!cfg.data.eval.empty()) report("eval", load_rows(cfg, cfg.data.eval, mc.vocab_size));
    return 0;
  };
}

}  // namespace lathe::cli
