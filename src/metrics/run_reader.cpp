#include "metrics/run_reader.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "core/json_number.h"

namespace lathe {
namespace fs = std::filesystem;
namespace {

struct FileInfo {
  bool exists = false;
  int64_t size = 0;
  int64_t mtime_ns = 0;
};

FileInfo file_info(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true, int64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

double now_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// `n` bytes of `path` from `at` (fewer at the end of the file).
std::string read_range(const std::string& path, int64_t at, int64_t n) {
  std::ifstream f(path, std::ios::binary);
  if (!f || n <= 0) return {};
  f.seekg(at);
  std::string s(size_t(n), '\0');
  f.read(s.data(), n);
  s.resize(size_t(f.gcount()));
  return s;
}

// The first line identifies a run's log: its first step and wall time. 256 bytes hold it
// whole (a step line is ~230 bytes) yet keep this read one page of the file.
std::string fingerprint(const std::string& path) {
  std::string first = read_range(path, 0, 256);
  first = first.substr(0, first.find('\n'));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%zx", std::hash<std::string>{}(first));
  return buf;
}

// Parses each complete line of `text` (up to its last newline) into `rows`.
void parse_lines(const std::string& text, nlohmann::json& rows) {
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (nl == start) continue;
    nlohmann::json j = nlohmann::json::parse(text.begin() + long(start), text.begin() + long(nl),
                                             nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) rows.push_back(std::move(j));
  }
}

int64_t yaml_int(const YAML::Node& root, const char* section, const char* key) {
  try {
    const YAML::Node n = root[section][key];
    return n && n.IsScalar() ? n.as<int64_t>() : 0;
  } catch (const YAML::Exception&) {
    return 0;
  }
}

void flatten(const YAML::Node& n, const std::string& prefix, nlohmann::json& out) {
  if (n.IsMap()) {
    for (const auto& kv : n)
      flatten(
          kv.second,
          prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>(),
          out);
  } else if (n.IsSequence()) {
    std::string s = "[";
    for (size_t i = 0; i < n.size(); ++i)
      s += (i ? ", " : "") + (n[i].IsScalar() ? n[i].Scalar() : std::string("..."));
    out[prefix] = s + "]";
  } else if (n.IsScalar()) {
    out[prefix] = n.Scalar();
  } else {
    out[prefix] = "";
  }
}

}  // namespace

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  if (f) ss << f.rdbuf();
  return ss.str();
}

MetricsChunk read_metrics(const std::string& path, int64_t offset, const std::string& head,
                          size_t max_bytes) {
  MetricsChunk c;
  const FileInfo info = file_info(path);
  if (!info.exists) {
    c.reset = offset > 0;
    return c;
  }
  c.head = fingerprint(path);
  // Read from the start again when the reader's place cannot be in this file: it is
  // shorter, begins with another line, or the place is not just after a newline.
  bool restart = offset < 0 || offset > info.size || (offset > 0 && head != c.head);
  if (!restart && offset > 0) restart = read_range(path, offset - 1, 1) != "\n";
  if (restart) offset = 0;
  c.reset = restart || offset == 0;
  const int64_t n = std::min<int64_t>(info.size - offset, int64_t(max_bytes));
  std::string text = read_range(path, offset, n);
  const size_t last_nl = text.rfind('\n');
  if (last_nl == std::string::npos) {
    // One line longer than max_bytes cannot be a metrics line; step over it rather than stall.
    c.offset = offset + (n == int64_t(max_bytes) ? n : 0);
    c.more = n == int64_t(max_bytes);
    return c;
  }
  text.resize(last_nl + 1);
  parse_lines(text, c.rows);
  c.offset = offset + int64_t(text.size());
  c.more = offset + n < info.size && n == int64_t(max_bytes);
  return c;
}

RunStatus run_status(const std::string& dir, int64_t total_steps) {
  RunStatus s;
  const std::string metrics = (fs::path(dir) / "metrics.jsonl").string();
  const std::string config = (fs::path(dir) / "config.yaml").string();
  const FileInfo mi = file_info(metrics);
  const FileInfo ci = file_info(config);
  s.config_mtime_ns = ci.mtime_ns;
  s.total = total_steps;
  if (s.total <= 0 && ci.exists) {
    try {
      s.total = yaml_int(YAML::Load(read_text_file(config)), "train", "max_steps");
    } catch (const YAML::Exception&) {
      s.total = 0;  // a config.yaml being synced may be cut short: unknown until complete
    }
  }
  std::error_code ec;
  const bool finished = fs::is_directory(fs::path(dir) / "final", ec);
  if (!mi.exists) {
    s.state = finished ? "finished" : "starting";
    return s;
  }
  s.updated_s_ago = std::max(0.0, now_seconds() - 1e-9 * double(mi.mtime_ns));
  // The newest 24 KB hold ~100 step lines: enough for a steady rate, and one small read
  // per poll however long the log grows.
  const int64_t tail = std::min<int64_t>(mi.size, 24 * 1024);
  std::string text = read_range(metrics, mi.size - tail, tail);
  if (tail < mi.size) text.erase(0, text.find('\n') + 1);  // the first line is cut
  nlohmann::json rows = nlohmann::json::array();
  parse_lines(text, rows);
  std::vector<std::pair<int64_t, double>> steps;  // training lines: (step, time)
  double step_time_sum = 0;
  for (const auto& r : rows) {
    const auto step = r.contains("step") ? json_integer<int64_t>(r["step"]) : std::nullopt;
    if (!r.contains("loss") || !step) continue;
    steps.emplace_back(*step, json_double(r.value("time", nlohmann::json())).value_or(0.0));
    step_time_sum += r.value("step_time_s", 0.0);
  }
  if (!steps.empty()) s.step = steps.back().first;
  // The rate from wall times covers everything between steps (evals, checkpoints);
  // step_time_s alone is the fallback for logs written before lines carried their time.
  const size_t k = std::min<size_t>(steps.size(), 21);
  if (k >= 2) {
    const auto& a = steps[steps.size() - k];
    const auto& b = steps.back();
    if (a.second > 0 && b.first > a.first)
      s.seconds_per_step = (b.second - a.second) / double(b.first - a.first);
  }
  if (s.seconds_per_step <= 0 && !steps.empty())
    s.seconds_per_step = step_time_sum / double(steps.size());
  if (finished) {
    s.state = "finished";
    if (s.total <= 0) s.total = s.step;
  } else if (steps.empty()) {
    s.state = "starting";
  } else {
    // Idle: nothing logged for 5 steps' time (at least 30 s): stopped, crashed, or a copy
    // whose sync has paused.
    const bool idle = s.updated_s_ago > std::max(30.0, 5 * s.seconds_per_step);
    s.state = idle ? "idle" : "training";
    if (!idle && s.total > s.step && s.seconds_per_step > 0)
      s.eta_s = std::max(0.0, double(s.total - s.step) * s.seconds_per_step - s.updated_s_ago);
  }
  return s;
}

nlohmann::json to_json(const RunStatus& s) {
  return {{"step", s.step},
          {"total", s.total},
          {"seconds_per_step", s.seconds_per_step},
          {"eta_s", s.eta_s},
          {"updated_s_ago", s.updated_s_ago},
          {"config_mtime_ns", s.config_mtime_ns},
          {"state", s.state}};
}

nlohmann::json flatten_config(const std::string& yaml_text) {
  nlohmann::json out = nlohmann::json::object();
  try {
    flatten(YAML::Load(yaml_text), "", out);
  } catch (const YAML::Exception&) {
    // Half-synced or damaged: the page still shows the text.
  }
  return out;
}

nlohmann::json read_samples(const std::string& dir, size_t max_rows) {
  nlohmann::json files = nlohmann::json::array();
  const fs::path folder = fs::path(dir) / "samples";
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return files;
  std::vector<fs::path> paths;
  for (const auto& e : fs::directory_iterator(folder, ec))
    if (e.path().extension() == ".jsonl") paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  for (const fs::path& p : paths) {
    std::ifstream f(p);
    nlohmann::json rows = nlohmann::json::array();
    size_t count = 0;
    for (std::string line; std::getline(f, line);) {
      if (line.empty()) continue;
      ++count;
      if (rows.size() >= max_rows) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object()) rows.push_back(std::move(j));
    }
    files.push_back({{"file", p.filename().string()}, {"count", count}, {"rows", rows}});
  }
  return files;
}

}  // namespace lathe
