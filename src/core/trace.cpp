#include "core/trace.h"

#include <cstdio>
#include <fstream>
#include <mutex>
#include <vector>

#include "core/error.h"

namespace lathe::trace {
namespace {

struct Event {
  const char* name;
  const char* cat;
  double ts_us, dur_us;
  int tid;
  std::string args;
};

struct State {
  std::mutex mu;
  std::vector<Event> events;
  std::vector<std::pair<int, std::string>> thread_names;
  std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now();
  int pid = 0;
  int next_tid = 0;
};

State& state() {
  static State s;
  return s;
}

// Small stable ids in order of first use; Perfetto draws one track per id.
int this_thread_id() {
  thread_local int id = -1;
  if (id < 0) {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    id = s.next_tid++;
  }
  return id;
}

std::string escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

void start(int pid) {
  State& s = state();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.events.clear();
    s.events.reserve(1 << 16);
    s.pid = pid;
  }
  recording().store(true);
}

void record(const char* name, const char* cat, std::chrono::steady_clock::time_point begin,
            std::chrono::steady_clock::time_point end, const std::string& args_json) {
  State& s = state();
  const int tid = this_thread_id();
  const double ts = std::chrono::duration<double, std::micro>(begin - s.origin).count();
  const double dur = std::chrono::duration<double, std::micro>(end - begin).count();
  std::lock_guard<std::mutex> lock(s.mu);
  s.events.push_back({name, cat, ts, dur, tid, args_json});
}

void name_thread(const char* name) {
  State& s = state();
  const int tid = this_thread_id();
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto& [t, n] : s.thread_names)
    if (t == tid) return void(n = name);
  s.thread_names.emplace_back(tid, name);
}

size_t stop_and_write(const std::string& path) {
  recording().store(false);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  std::string out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  char buf[256];
  bool first = true;
  auto sep = [&] {
    if (!first) out += ",\n";
    first = false;
  };
  for (const auto& [tid, name] : s.thread_names) {
    sep();
    std::snprintf(buf, sizeof buf,
                  "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, "
                  "\"args\": {\"name\": \"%s\"}}",
                  s.pid, tid, escaped(name).c_str());
    out += buf;
  }
  for (const Event& e : s.events) {
    sep();
    std::snprintf(buf, sizeof buf,
                  "{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, "
                  "\"pid\": %d, \"tid\": %d",
                  escaped(e.name).c_str(), e.cat, e.ts_us, e.dur_us, s.pid, e.tid);
    out += buf;
    out += e.args.empty() ? "}" : ", \"args\": {" + e.args + "}}";
  }
  out += "\n]}\n";
  const size_t n = s.events.size();
  s.events.clear();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  LATHE_CHECK(f, "cannot write ", path);
  f << out;
  f.flush();
  LATHE_CHECK(f, "cannot write ", path, " (is the disk full?)");
  return n;
}

}  // namespace lathe::trace
