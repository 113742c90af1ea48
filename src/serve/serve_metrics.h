// GET /metrics: the server's counters, gauges and latency histograms in Prometheus' text
// exposition format (version 0.0.4), as vLLM and llama-server expose theirs.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lathe {

struct SchedulerCounters;

class ServeMetrics {
 public:
  ServeMetrics();
  // A finished HTTP request of `endpoint` ("/v1/completions", ...) with its status.
  void observe_request(const std::string& endpoint, int status, double seconds);
  // From a generation request's arrival to its first generated token.
  void observe_first_token(double seconds);
  void add_tokens(int64_t prompt, int64_t completion);
  // The text to serve; `sched` may be null while the model loads.
  std::string render(const SchedulerCounters* sched, int64_t in_flight) const;

 private:
  struct Histogram {
    std::vector<int64_t> counts;  // per bucket of kBounds, then +Inf
    double sum = 0;
    int64_t count = 0;
    void observe(double x);
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, Histogram> latency_;
  Histogram ttft_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0;
};

}  // namespace lathe
