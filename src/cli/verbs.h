#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace lathe::cli {

// Each verb adds its subcommand and returns the action to run when it is chosen.
using Action = std::function<int()>;
Action add_train(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_prep(CLI::App& app);
Action add_tokenize(CLI::App& app);
Action add_generate(CLI::App& app);
Action add_chat(CLI::App& app);
Action add_merge(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_plan(CLI::App& app);
Action add_launch(CLI::App& app);
Action add_job(CLI::App& app);

}  // namespace lathe::cli
