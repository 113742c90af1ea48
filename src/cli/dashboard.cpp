// lathe dashboard RUN_DIR... [--port 8088] [--host 127.0.0.1]: serves a page that charts the
// runs' metrics as they are written, with their progress, config and eval samples
// (src/metrics/dashboard_server.h). Runs until Ctrl-C or SIGTERM.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/verbs.h"
#include "metrics/dashboard_server.h"

namespace lathe::cli {
namespace {

volatile std::sig_atomic_t g_dashboard_stop = 0;
extern "C" void on_dashboard_signal(int) { g_dashboard_stop = 1; }

struct DashboardCliOptions {
  std::vector<std::string> runs;
  std::string host = "127.0.0.1";
  int port = 8088;
};

int run_dashboard(const DashboardCliOptions& o) {
  DashboardOptions opt;
  opt.run_dirs = o.runs;
  opt.host = o.host;
  opt.port = o.port;
  opt.port_option = "--port";
  // Signals first: a Ctrl-C between binding and the wait below must still stop cleanly.
  std::signal(SIGINT, on_dashboard_signal);
  std::signal(SIGTERM, on_dashboard_signal);
  DashboardServer server(opt);
  std::fprintf(stderr, "dashboard: %s (%zu run%s; Ctrl-C stops)\n", server.url().c_str(),
               o.runs.size(), o.runs.size() == 1 ? "" : "s");
  // pause() returns after each signal handler; the flag says whether it was ours.
  while (!g_dashboard_stop) ::pause();
  return 0;
}

}  // namespace

Action add_dashboard(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "dashboard", "Serve a live page of runs' metrics, progress, config and eval samples");
  auto o = std::make_shared<DashboardCliOptions>();
  cmd->add_option("runs", o->runs, "run folders (output.dir), running, finished or copied")
      ->required();
  cmd->add_option("--port", o->port, "port to serve on")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--host", o->host,
                  "address to bind; the default serves this machine only (use ssh -L to look "
                  "from another)")
      ->capture_default_str();
  return [o]() { return run_dashboard(*o); };
}

}  // namespace lathe::cli
