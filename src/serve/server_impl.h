// ApiServer's state, shared by its files: server.cpp (the HTTP setup and the small
// routes) and generation_routes.cpp (completions and chat).
#pragma once
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/json.h"
#include "serve/api_error.h"
#include "serve/serve_metrics.h"
#include "serve/server.h"

namespace lathe {

struct ApiServer::Impl {
  ServeOptions opt;
  httplib::Server http;
  std::thread thread;
  int port = 0;
  ServeMetrics metrics;

  std::mutex model_mu;
  std::shared_ptr<const ServedModel> model;  // null while loading
  std::atomic<bool> draining{false};
  std::atomic<int64_t> in_flight{0};  // generation requests being answered

  std::shared_ptr<const ServedModel> loaded() {
    std::lock_guard lk(model_mu);
    return model;
  }
  // The loaded model, or 503 while loading or draining.
  std::shared_ptr<const ServedModel> ready_model();
  // The adapter index a request's `model` names: -1 for the base (or an empty name), else
  // its index in the bank; 404 for an unknown name.
  int adapter_of(const ServedModel& m, const std::string& name) const;

  void routes();
  void completions(const httplib::Request& req, httplib::Response& res);
  void chat(const httplib::Request& req, httplib::Response& res);
};

void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200);
void send_error(httplib::Response& res, const ApiError& e);
int64_t unix_time();
std::string random_id(const char* prefix);

// Counts a generation request in flight for as long as it (or its stream) lives.
struct InFlight {
  std::atomic<int64_t>& n;
  explicit InFlight(std::atomic<int64_t>& c) : n(c) { ++n; }
  ~InFlight() { --n; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
};

}  // namespace lathe
