// `lathe serve`: an OpenAI-compatible HTTP server (Debian's cpp-httplib) over the
// continuous-batching scheduler. Endpoints:
//   POST /v1/completions, /v1/chat/completions   (stream: server-sent events)
//   GET  /v1/models, /health (200 once loaded, 503 while loading or draining), /metrics
//   POST /tokenize, /detokenize; GET /tokenizer_info   (vLLM's, which lm-eval uses)
// With an API key every endpoint but /health wants `Authorization: Bearer KEY` (401).
// Errors are OpenAI's {"error": {"message", "type", "param", "code"}}.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "serve/openai_request.h"

namespace lathe {

class Scheduler;
class Tokenizer;

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback unless asked: a model is not offered to the network
  int port = 8000;                 // 0 = any free port
  std::string api_key;             // empty: no authentication
  size_t max_body_bytes = size_t(4) << 20;  // larger bodies get 413
  ServeLimits limits;
  int http_threads = 0;  // 0: enough for every sequence the scheduler admits, plus spares
};

// The loaded model as the routes need it.
struct ServedModel {
  std::string name;                   // the base model's id in requests and /v1/models
  std::vector<std::string> adapters;  // ids of the LoRA adapters, in the bank's order
  const Tokenizer* tokenizer = nullptr;
  Scheduler* scheduler = nullptr;
  std::string chat_template;  // tokenizer_config.json's, for /tokenizer_info
  std::string chat_error;     // why chats cannot be rendered for this model, if so
  std::vector<int32_t> chat_stop_tokens;
};

class ApiServer {
 public:
  // Binds host:port (errors name the address and why) and serves from a background
  // thread; generation answers 503 until set_model.
  explicit ApiServer(ServeOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  int port() const;
  std::string url() const;
  void set_model(ServedModel model);  // /health turns 200
  // Takes no new generation requests (503) and waits up to timeout_s for those in flight
  // to finish; returns how many were still running.
  int64_t drain(double timeout_s);
  // Stops listening and waits for the connection threads. Idempotent.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
