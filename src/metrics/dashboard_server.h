// The dashboard: one page that charts the metrics of one or several run folders as they
// are written, with each run's progress, ETA, resolved config and eval samples. Served
// over HTTP from a background thread, by `lathe dashboard RUN_DIR...` and, with
// output.dashboard=PORT, by the training process itself. It reads the folders, never
// writes to them.
//
// Endpoints (JSON unless noted):
//   GET /                   the page (HTML), /dashboard.js, /dygraph.js, /dygraph.css
//   GET /api/runs           [{"name", "dir", "config" (config.yaml's text), "config_flat"}]
//   GET /api/poll?offset=O0,O1,..&head=H0,H1,..
//                           per run: new metrics.jsonl rows after byte O (read_metrics) and
//                           its status (run_status); the page polls this every second
//   GET /api/samples?run=I  the eval samples of run I (read_samples)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lathe {

struct DashboardOptions {
  std::vector<std::string> run_dirs;
  std::string host = "127.0.0.1";  // loopback: a run's page is not offered to the network
  int port = 8088;                 // 0 = any free port (tests)
  // > 0: the total number of steps of run_dirs[0] (the trainer's own run, whose
  // max_steps=0 config.yaml does not say it).
  int64_t total_steps = 0;
  // How the user sets the port, for the error when it is taken ("--port",
  // "output.dashboard").
  std::string port_option = "--port";
};

class DashboardServer {
 public:
  // Checks every run folder, binds host:port and starts serving. Throws lathe::Error naming
  // the missing folder, or the address that cannot be bound and why.
  explicit DashboardServer(DashboardOptions options);
  ~DashboardServer();  // stops serving and waits for the server thread
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  int port() const;
  std::string url() const;  // http://host:port/

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// output.dashboard=PORT: the training process serves its own run folder on 127.0.0.1,
// knowing the run's total steps, and says where on stderr.
std::unique_ptr<DashboardServer> serve_run_dashboard(const std::string& run_dir, int port,
                                                     int64_t total_steps);

// Why host:port cannot be bound, asked of the kernel (httplib only reports that binding
// failed): "the port is in use by another program", the resolver's message, ...
std::string http_bind_error(const std::string& host, int port);

// The names the page gives the runs: each folder's name, or as many trailing path parts as
// tell them apart ("a/run1", "b/run1").
std::vector<std::string> run_display_names(const std::vector<std::string>& dirs);

}  // namespace lathe
