// A Chrome trace of chosen training steps (train.profile_steps): every backend op, matrix
// product, collective and phase as a complete ("X") event of the Trace Event Format, which
// Perfetto and chrome://tracing open. Recording is off except inside the chosen steps; off,
// a TraceScope costs one relaxed atomic load.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace lathe {

namespace trace {

// Whether events are being recorded now.
inline std::atomic<bool>& recording() {
  static std::atomic<bool> on{false};
  return on;
}

// Starts recording (clearing earlier events); `pid` names this process (its rank).
void start(int pid);
// Stops recording and writes the events to `path` as {"traceEvents": [...]}; returns how
// many were written.
size_t stop_and_write(const std::string& path);

// One finished event: [begin, end) on the calling thread, in category `cat`.
void record(const char* name, const char* cat, std::chrono::steady_clock::time_point begin,
            std::chrono::steady_clock::time_point end, const std::string& args_json = "");

// Names the calling thread in the trace ("training", "communication").
void name_thread(const char* name);

}  // namespace trace

// Records the enclosing scope as one event when recording is on at its start.
class TraceScope {
 public:
  TraceScope(const char* name, const char* cat) : name_(name), cat_(cat) {
    if (trace::recording().load(std::memory_order_relaxed)) {
      on_ = true;
      begin_ = std::chrono::steady_clock::now();
    }
  }
  ~TraceScope() {
    if (on_) trace::record(name_, cat_, begin_, std::chrono::steady_clock::now(), args_);
  }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;
  // Extra fields for the event's "args" object, as JSON members ("\"bytes\": 4096").
  void args(std::string json_members) { args_ = std::move(json_members); }
  bool on() const { return on_; }

 private:
  const char* name_;
  const char* cat_;
  bool on_ = false;
  std::chrono::steady_clock::time_point begin_;
  std::string args_;
};

}  // namespace lathe
