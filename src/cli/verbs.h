#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace lathe::cli {

// Each verb adds its subcommand and returns the action to run when it is chosen.
using Action = std::function<int()>;
Action add_train(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_prep(CLI::App& app);
Action add_tokenize(CLI::App& app);
Action add_logits(CLI::App& app);
Action add_generate(CLI::App& app);
Action add_chat(CLI::App& app);
Action add_merge(CLI::App& app);
Action add_export(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_plan(CLI::App& app);
Action add_launch(CLI::App& app);
Action add_job(CLI::App& app);
Action add_dashboard(CLI::App& app);
Action add_serve(CLI::App& app);

// What `lathe --version` prints: version, commit, CPU kernels and backends found.
std::string version_text();

}  // namespace lathe::cli
