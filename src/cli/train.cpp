// lathe train CONFIG.yaml [section.key=value ...]
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/verbs.h"
#include "dist/communicator.h"
#include "train/config.h"
#include "train/trainer.h"

namespace lathe::cli {
namespace {

extern "C" void on_stop_signal(int) { Trainer::request_stop(); }

const auto g_launch = std::chrono::steady_clock::now();

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
    // Declared outside the try: an error must end the other processes before this one's
    // trainer is torn down, which could wait on collectives they will never join.
    std::unique_ptr<Trainer> trainer;
    try {
      trainer = std::make_unique<Trainer>(cfg);
      const double ready =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - g_launch).count();
      std::fprintf(stderr,
                   "model: %zu parameters, %s on %s; %lld steps; first step starts %.3fs after "
                   "launch\n"
                   "MFU against the matrix-product peak: %s\n",
                   trainer->model().num_params(), cfg.train.precision.c_str(),
                   trainer->model().backend().description().c_str(),
                   static_cast<long long>(trainer->total_steps()), ready,
                   trainer->matmul_peak().describe().c_str());
      trainer->run();
    } catch (const std::exception& e) {
      end_job_on_error(e.what());
      throw;
    }
    return 0;
  };
}

}  // namespace lathe::cli
