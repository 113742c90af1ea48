// lathe train CONFIG.yaml [section.key=value ...]
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/verbs.h"
#include "train/config.h"
#include "train/trainer.h"

namespace lathe::cli {
namespace {

extern "C" void on_stop_signal(int) { Trainer::request_stop(); }

}  // namespace

Action add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Fine-tune a model (full fine-tuning)");
  auto config = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("config", *config, "YAML config file")->required();
  cmd->add_option("overrides", *overrides,
                  "section.key=value overrides, e.g. train.lr=3e-5 output.dir=runs/a");
  cmd->footer(
      "SIGTERM or Ctrl-C: the current step finishes, a checkpoint is saved, and the run "
      "exits 0; continue it with train.resume=true.");
  return [config, overrides]() {
    const Config cfg = load_config(*config, *overrides);
    std::fprintf(stderr, "# resolved config\n%s\n", config_to_yaml(cfg).c_str());
    std::signal(SIGTERM, on_stop_signal);
    std::signal(SIGINT, on_stop_signal);
    Trainer trainer(cfg);
    std::fprintf(stderr,
                 "model: %zu parameters, %s; %lld steps; matmul peak %.0f GFLOP/s; ready in %.2fs\n",
                 trainer.model().num_params(), cfg.train.precision.c_str(),
                 static_cast<long long>(trainer.total_steps()), trainer.peak_gflops(),
                 trainer.startup_seconds());
    trainer.run();
    return 0;
  };
}

}  // namespace lathe::cli
