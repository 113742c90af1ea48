// CPU time that watching a run takes from the training process, per step line, measured
// in CPU time rather than wall time, which on a shared machine moves by more than the
// costs measured here:
//   tensorboard  TensorBoardWriter::log of one step line (output.tensorboard)
//   dashboard    one poll of the page (/api/poll after one new line) answered by the
//                server's threads: the process's CPU time less the polling client thread's
// Usage: bench_watch_cost [lines=2000]
#include <httplib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/json.h"
#include "metrics/dashboard_server.h"
#include "metrics/tensorboard.h"

namespace fs = std::filesystem;

namespace {

double cpu_clock(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// A step line as the trainer writes it (the 56M run's values).
nlohmann::json step_line(int step) {
  return {{"step", step},
          {"time", 1.8e9 + step},
          {"loss", 2.5 + 1e-4 * step},
          {"lr", 3e-4},
          {"grad_norm", 1.25},
          {"tokens", 1024},
          {"tokens_per_s", 180.5},
          {"step_time_s", 5.67},
          {"mfu", 0.31}};
}

}  // namespace

int main(int argc, char** argv) {
  const int lines = argc > 1 ? std::atoi(argv[1]) : 2000;
  const fs::path dir = fs::temp_directory_path() / ("lathe_watch_cost_" + std::to_string(getpid()));
  fs::create_directories(dir);
  {
    std::ofstream cfg(dir / "config.yaml");
    cfg << "train:\n  max_steps: 100000\n";
  }

  // TensorBoard: each line written and flushed, as the trainer does after every step.
  lathe::TensorBoardWriter tb((dir / "tensorboard").string());
  double t0 = cpu_clock(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 1; i <= lines; ++i) tb.log(step_line(i));
  const double tb_s = (cpu_clock(CLOCK_PROCESS_CPUTIME_ID) - t0) / lines;

  // Dashboard: the log already holds `lines` steps; per poll one more line is appended
  // and the page's poll asks for it (and the status, which reads the log's tail).
  std::ofstream log(dir / "metrics.jsonl");
  for (int i = 1; i <= lines; ++i) log << step_line(i).dump() << "\n";
  log.flush();
  lathe::DashboardOptions opt;
  opt.run_dirs = {dir.string()};
  opt.port = 0;
  lathe::DashboardServer server(opt);
  httplib::Client client("127.0.0.1", server.port());
  auto first = client.Get("/api/poll");
  auto j = nlohmann::json::parse(first->body)["runs"][0];
  int64_t offset = j["offset"];
  std::string head = j["head"];
  const int polls = 1000;
  t0 = cpu_clock(CLOCK_PROCESS_CPUTIME_ID);
  const double c0 = cpu_clock(CLOCK_THREAD_CPUTIME_ID);
  size_t rows = 0;
  for (int i = 1; i <= polls; ++i) {
    log << step_line(lines + i).dump() << "\n";
    log.flush();
    auto r = client.Get(("/api/poll?offset=" + std::to_string(offset) + "&head=" + head).c_str());
    j = nlohmann::json::parse(r->body)["runs"][0];
    offset = j["offset"];
    rows += j["rows"].size();
  }
  const double client_s = cpu_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
  const double poll_s = (cpu_clock(CLOCK_PROCESS_CPUTIME_ID) - t0 - client_s) / polls;
  fs::remove_all(dir);
  std::printf(
      "{\"tensorboard_cpu_s_per_line\": %.3g, \"dashboard_cpu_s_per_poll\": %.3g, "
      "\"polls\": %d, \"rows_received\": %zu, \"log_lines\": %d}\n",
      tb_s, poll_s, polls, rows, lines);
  return rows == size_t(polls) ? 0 : 1;
}
