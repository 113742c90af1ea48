// lathe <verb>: one binary, one thin file per verb.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <vector>

#include "cli/verbs.h"
#include "core/error.h"

int main(int argc, char** argv) {
  // lathe serve shares the cores between its compute threads and the connection threads
  // that stream tokens. OpenMP's default spin-waiting keeps idle compute threads busy
  // between steps and starves the others: on 2 cores, 32 streaming clients of stories260K
  // saw p99 latency 3.0 s and time to first token 0.35 s, against 0.62 s and 0.065 s with
  // OMP_WAIT_POLICY=PASSIVE at the same throughput. libgomp reads the variable once, when it
  // loads, so the server runs itself again with it unless it is set.
  if (argc > 1 && std::string_view(argv[1]) == "serve" && !std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // only returns on failure: then serve as is
  }
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
  add(lathe::cli::add_serve);
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
