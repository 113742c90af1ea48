// lathe <verb>: one binary, one thin file per verb.
#include <cstdio>
#include <exception>
#include <vector>

#include "cli/verbs.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"lathe: fine-tune Llama-family models natively (no Python in the loop)", "lathe"};
  app.set_version_flag("--version", [] { return lathe::cli::version_text(); });
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, lathe::cli::Action>> verbs;
  auto add = [&](lathe::cli::Action (*f)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    lathe::cli::Action a = f(app);
    verbs.emplace_back(app.get_subcommands({})[before], a);
  };
  add(lathe::cli::add_train);
  add(lathe::cli::add_prep);
  add(lathe::cli::add_tokenize);
  add(lathe::cli::add_bench);
  add(lathe::cli::add_generate);
  add(lathe::cli::add_chat);
  add(lathe::cli::add_logits);
  add(lathe::cli::add_merge);
  add(lathe::cli::add_export);
  add(lathe::cli::add_eval);
  add(lathe::cli::add_plan);
  add(lathe::cli::add_launch);
  add(lathe::cli::add_job);
  add(lathe::cli::add_dashboard);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, action] : verbs)
      if (sub->parsed()) return action();
  } catch (const lathe::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
