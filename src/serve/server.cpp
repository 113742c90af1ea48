#include "serve/server.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>

#include "core/error.h"
#include "generate/chat_prompt.h"
#include "metrics/dashboard_server.h"
#include "serve/scheduler.h"
#include "serve/server_impl.h"
#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Set when a request is routed, read when its answer has been written: httplib answers a
// connection's requests one after another on one thread.
thread_local Clock::time_point request_start;

// Equal-time comparison, so the answer's timing does not tell how much of a key matched.
bool same_key(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i)
    diff |= uint8_t(i < a.size() ? a[i] : 0) ^ uint8_t(i < b.size() ? b[i] : 0);
  return diff == 0;
}

void refuse_unknown_fields(const json& body, std::initializer_list<const char*> known) {
  // Iterated by key() rather than a structured binding: clang 14 (Debian 12's, which builds
  // the fuzzers) cannot capture a structured binding in a lambda.
  for (auto it = body.begin(); it != body.end(); ++it) {
    const std::string& key = it.key();
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return key == k; }) ==
        known.end())
      throw bad_field(key, str_cat("unrecognized request argument: ", key));
  }
}

// The endpoints metrics are kept for; anything else counts as "other" (bounded labels).
std::string endpoint_label(const std::string& path) {
  static const char* known[] = {
      "/v1/completions", "/v1/chat/completions", "/v1/models",     "/health", "/metrics",
      "/tokenize",       "/detokenize",          "/tokenizer_info"};
  for (const char* k : known)
    if (path == k) return k;
  return "other";
}

}  // namespace

void send_json(httplib::Response& res, const json& j, int status) {
  res.status = status;
  // Texts are the tokenizer's decoding (valid UTF-8), but echoed user strings may not be.
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.body(), e.status);
  if (e.status == 429 || e.status == 503) res.set_header("Retry-After", "1");
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 gen(std::random_device{}());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
  return std::string(prefix) + buf;
}

std::shared_ptr<const ServedModel> ApiServer::Impl::ready_model() {
  if (draining) throw ApiError(503, "the server is shutting down", "", "service_unavailable");
  auto m = loaded();
  if (!m) throw ApiError(503, "the model is still loading", "", "service_unavailable");
  return m;
}

int ApiServer::Impl::adapter_of(const ServedModel& m, const std::string& name) const {
  if (name.empty() || name == m.name) return -1;
  for (size_t i = 0; i < m.adapters.size(); ++i)
    if (m.adapters[i] == name) return int(i);
  std::string known = m.name;
  for (const std::string& a : m.adapters) known += ", " + a;
  throw ApiError(404, str_cat("the model `", name, "` does not exist; this server has: ", known),
                 "model", "invalid_request_error", "model_not_found");
}

void ApiServer::Impl::routes() {
  httplib::Server& s = http;
  // Any exception a handler lets through is a 500 with the message, never a crash.
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const ApiError& e) {
          send_error(res, e);
          return;
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, what, "", "server_error"));
      });
  // Errors httplib answers itself (413 for a body over --max-body, 404, 400 for a
  // malformed request line) get OpenAI's error body too.
  s.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 413) {
          send_error(
              res, ApiError(413, "the request body is larger than this server accepts (--max-body)",
                            "", "invalid_request_error", "request_too_large"));
        } else if (res.status == 404) {
          send_error(res, ApiError(404, str_cat("no route ", req.method, " ", req.path), "",
                                   "invalid_request_error", "not_found"));
        } else {
          send_error(res, ApiError(res.status, str_cat("HTTP ", res.status), ""));
        }
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    request_start = Clock::now();
    if (opt.api_key.empty() || req.path == "/health")
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string bearer = "Bearer ";
    if (auth.compare(0, bearer.size(), bearer) != 0 ||
        !same_key(auth.substr(bearer.size()), opt.api_key)) {
      send_error(res, ApiError(401,
                               auth.empty() ? "missing API key: send Authorization: Bearer KEY"
                                            : "incorrect API key",
                               "", "invalid_request_error", "invalid_api_key"));
      res.set_header("WWW-Authenticate", "Bearer");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    // Generation requests are counted when their answer (or stream) ends, with its time.
    if (req.path == "/v1/completions" || req.path == "/v1/chat/completions") return;
    const double t =
        res.status == 413 ? 0 : std::chrono::duration<double>(Clock::now() - request_start).count();
    metrics.observe_request(endpoint_label(req.path), res.status, t);
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (draining)
      send_json(res, {{"status", "draining"}}, 503);
    else if (!loaded())
      send_json(res, {{"status", "loading"}}, 503);
    else
      send_json(res, {{"status", "ok"}});
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    auto m = loaded();
    json data = json::array();
    if (m) {
      const int64_t t = unix_time();
      data.push_back({{"id", m->name},
                      {"object", "model"},
                      {"created", t},
                      {"owned_by", "lathe"},
                      {"max_model_len", opt.limits.context}});
      for (const std::string& a : m->adapters)
        data.push_back({{"id", a},
                        {"object", "model"},
                        {"created", t},
                        {"owned_by", "lathe"},
                        {"parent", m->name},
                        {"max_model_len", opt.limits.context}});
    }
    send_json(res, {{"object", "list"}, {"data", data}});
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto m = loaded();
    res.set_content(metrics.render(m ? &m->scheduler->counters() : nullptr, in_flight),
                    "text/plain; version=0.0.4");
  });
  s.Get("/tokenizer_info", [this](const httplib::Request&, httplib::Response& res) {
    auto m = ready_model();
    const Tokenizer& tok = *m->tokenizer;
    auto token = [&](int32_t id) { return id >= 0 ? json(tok.piece(id)) : json(); };
    send_json(res, {{"bos_token", token(tok.bos_id())},
                    {"eos_token", token(tok.eos_id())},
                    {"pad_token", token(tok.pad_id())},
                    {"add_bos_token", tok.adds_bos()},
                    {"chat_template", m->chat_template.empty() ? json() : json(m->chat_template)},
                    {"model_max_length", opt.limits.context},
                    {"vocab_size", tok.vocab_size()}});
  });
  s.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    auto m = ready_model();
    const json body = parse_json_body(req.body);
    refuse_unknown_fields(
        body, {"prompt", "add_special_tokens", "messages", "add_generation_prompt", "model"});
    std::vector<int32_t> ids;
    if (body.contains("messages")) {
      const ChatRequest chat = parse_chat_request({{"messages", body["messages"]}}, opt.limits);
      if (!m->chat_error.empty()) throw bad_field("messages", m->chat_error);
      try {
        ids = chat_prompt_ids(*m->tokenizer, chat.messages);
      } catch (const Error& e) {
        throw bad_field("messages", e.what());
      }
    } else {
      if (!body.contains("prompt") || !body["prompt"].is_string())
        throw bad_field("prompt", "prompt must be a text (or give messages)");
      bool special = true;
      if (body.contains("add_special_tokens")) {
        if (!body["add_special_tokens"].is_boolean())
          throw bad_field("add_special_tokens", "add_special_tokens must be true or false");
        special = body["add_special_tokens"].get<bool>();
      }
      ids = m->tokenizer->encode(body["prompt"].get<std::string>(), special);
    }
    json strs = json::array();
    for (int32_t id : ids) strs.push_back(m->tokenizer->piece(id));
    send_json(res, {{"tokens", ids},
                    {"count", ids.size()},
                    {"max_model_len", opt.limits.context},
                    {"token_strs", strs}});
  });
  s.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    auto m = ready_model();
    const json body = parse_json_body(req.body);
    refuse_unknown_fields(body, {"tokens", "model"});
    if (!body.contains("tokens")) throw bad_field("tokens", "tokens is missing");
    const std::vector<int32_t> ids =
        parse_token_list(body["tokens"], "tokens", m->tokenizer->vocab_size());
    send_json(res, {{"prompt", m->tokenizer->decode(ids, /*skip_special=*/false)}});
  });
  s.Post("/v1/completions",
         [this](const httplib::Request& req, httplib::Response& res) { completions(req, res); });
  s.Post("/v1/chat/completions",
         [this](const httplib::Request& req, httplib::Response& res) { chat(req, res); });
}

ApiServer::ApiServer(ServeOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = std::move(options);
  httplib::Server& s = m.http;
  s.set_payload_max_length(m.opt.max_body_bytes);
  // A connection holds a thread while open (httplib: a thread per connection). Every
  // sequence the scheduler admits (running + queued) may be a waiting connection, and
  // spare threads answer 429s, /health and /metrics while they wait.
  int threads = m.opt.http_threads;
  if (threads <= 0) threads = int(std::min<int64_t>(1024, m.opt.limits.max_sequences + 16));
  s.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  // An idle kept-alive connection holds a thread too: released after 5 s.
  s.set_keep_alive_timeout(5);
  auto listen_fd = std::make_shared<int>(-1);
  s.set_socket_options([listen_fd](int fd) {  // SO_REUSEADDR only: no SO_REUSEPORT port sharing
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    *listen_fd = fd;
  });
  m.routes();
  if (m.opt.port == 0) {
    m.port = s.bind_to_any_port(m.opt.host);
    LATHE_CHECK(m.port > 0, "cannot serve on ", m.opt.host, ": ", http_bind_error(m.opt.host, 0));
  } else {
    LATHE_CHECK(s.bind_to_port(m.opt.host, m.opt.port), "cannot serve on ", m.opt.host, ":",
                m.opt.port, ": ", http_bind_error(m.opt.host, m.opt.port),
                "; choose another with --port");
    m.port = m.opt.port;
  }
  // httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed when Debian built
  // the library): a burst of new connections past it has its SYNs dropped, and each client
  // waits out TCP's retransmission (1 s, then 3 s, 7 s: a load test's p99 of 12 s). Listening
  // again on the bound socket raises the queue.
  if (*listen_fd >= 0) ::listen(*listen_fd, SOMAXCONN);
  m.thread = std::thread([&s] { s.listen_after_bind(); });
  for (int i = 0; i < 5000 && !s.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

ApiServer::~ApiServer() { stop(); }

void ApiServer::stop() {
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int ApiServer::port() const { return impl_->port; }

std::string ApiServer::url() const { return str_cat("http://", impl_->opt.host, ":", impl_->port); }

void ApiServer::set_model(ServedModel model) {
  std::lock_guard lk(impl_->model_mu);
  impl_->model = std::make_shared<const ServedModel>(std::move(model));
}

int64_t ApiServer::drain(double timeout_s) {
  impl_->draining = true;
  const auto until = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (impl_->in_flight > 0 && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return impl_->in_flight;
}

}  // namespace lathe
