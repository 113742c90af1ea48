#include "serve/serve_metrics.h"

#include <sstream>

#include "serve/scheduler.h"

namespace lathe {
namespace {
// Seconds: from a cached tokenize call (~1 ms) to a long generation on a CPU (minutes).
const std::vector<double> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                     2.5,   5,    10,    30,   60,  120,  300};
}  // namespace

ServeMetrics::ServeMetrics() { ttft_.counts.assign(kBounds.size() + 1, 0); }

void ServeMetrics::Histogram::observe(double x) {
  if (counts.empty()) counts.assign(kBounds.size() + 1, 0);
  size_t b = 0;
  while (b < kBounds.size() && x > kBounds[b]) ++b;
  counts[b] += 1;
  sum += x;
  count += 1;
}

void ServeMetrics::observe_request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard lk(mu_);
  requests_[{endpoint, status}] += 1;
  latency_[endpoint].observe(seconds);
}

void ServeMetrics::observe_first_token(double seconds) {
  std::lock_guard lk(mu_);
  ttft_.observe(seconds);
}

void ServeMetrics::add_tokens(int64_t prompt, int64_t completion) {
  std::lock_guard lk(mu_);
  prompt_tokens_ += prompt;
  completion_tokens_ += completion;
}

std::string ServeMetrics::render(const SchedulerCounters* s, int64_t in_flight) const {
  std::lock_guard lk(mu_);
  std::ostringstream o;
  auto histogram = [&](const std::string& name, const std::string& labels, const Histogram& h) {
    int64_t cum = 0;
    const std::string sep = labels.empty() ? "" : ",";
    for (size_t b = 0; b < kBounds.size(); ++b) {
      cum += h.counts.empty() ? 0 : h.counts[b];
      o << name << "_bucket{" << labels << sep << "le=\"" << kBounds[b] << "\"} " << cum << "\n";
    }
    o << name << "_bucket{" << labels << sep << "le=\"+Inf\"} " << h.count << "\n";
    o << name << "_sum" << (labels.empty() ? "" : "{" + labels + "}") << " " << h.sum << "\n";
    o << name << "_count" << (labels.empty() ? "" : "{" + labels + "}") << " " << h.count << "\n";
  };
  o << "# HELP lathe_requests_total HTTP requests answered, by endpoint and status.\n"
    << "# TYPE lathe_requests_total counter\n";
  for (const auto& [k, n] : requests_)
    o << "lathe_requests_total{endpoint=\"" << k.first << "\",status=\"" << k.second << "\"} " << n
      << "\n";
  o << "# HELP lathe_prompt_tokens_total Prompt tokens of answered generation requests.\n"
    << "# TYPE lathe_prompt_tokens_total counter\n"
    << "lathe_prompt_tokens_total " << prompt_tokens_ << "\n"
    << "# HELP lathe_generation_tokens_total Tokens generated for answered requests.\n"
    << "# TYPE lathe_generation_tokens_total counter\n"
    << "lathe_generation_tokens_total " << completion_tokens_ << "\n"
    << "# HELP lathe_http_requests_in_flight HTTP requests being answered.\n"
    << "# TYPE lathe_http_requests_in_flight gauge\n"
    << "lathe_http_requests_in_flight " << in_flight << "\n";
  if (s) {
    o << "# HELP lathe_sequences_running Sequences in the decode batch (KV cache slots in use).\n"
      << "# TYPE lathe_sequences_running gauge\n"
      << "lathe_sequences_running " << s->running.load() << "\n"
      << "# HELP lathe_sequences_waiting Sequences queued for a slot.\n"
      << "# TYPE lathe_sequences_waiting gauge\n"
      << "lathe_sequences_waiting " << s->waiting.load() << "\n"
      << "# HELP lathe_scheduler_steps_total Forward passes of the scheduler.\n"
      << "# TYPE lathe_scheduler_steps_total counter\n"
      << "lathe_scheduler_steps_total " << s->steps.load() << "\n"
      << "# HELP lathe_scheduler_rows_total Token rows run by those passes (prefill and decode).\n"
      << "# TYPE lathe_scheduler_rows_total counter\n"
      << "lathe_scheduler_rows_total " << s->step_rows.load() << "\n"
      << "# HELP lathe_scheduler_prompt_tokens_total Prompt tokens prefilled.\n"
      << "# TYPE lathe_scheduler_prompt_tokens_total counter\n"
      << "lathe_scheduler_prompt_tokens_total " << s->prompt_tokens.load() << "\n"
      << "# HELP lathe_scheduler_generated_tokens_total Tokens sampled (kept or not).\n"
      << "# TYPE lathe_scheduler_generated_tokens_total counter\n"
      << "lathe_scheduler_generated_tokens_total " << s->generated_tokens.load() << "\n";
  }
  o << "# HELP lathe_request_duration_seconds Time from a request's arrival to its last byte.\n"
    << "# TYPE lathe_request_duration_seconds histogram\n";
  for (const auto& [endpoint, h] : latency_)
    histogram("lathe_request_duration_seconds", "endpoint=\"" + endpoint + "\"", h);
  o << "# HELP lathe_time_to_first_token_seconds Time from a generation request's arrival to "
       "its first token.\n"
    << "# TYPE lathe_time_to_first_token_seconds histogram\n";
  histogram("lathe_time_to_first_token_seconds", "", ttft_);
  return o.str();
}

}  // namespace lathe
