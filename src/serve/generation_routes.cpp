// POST /v1/completions and /v1/chat/completions: a request becomes one sequence per prompt
// and choice in the scheduler; its thread turns their tokens into the answer, whole or as
// server-sent events.
#include <random>

#include "core/error.h"
#include "generate/chat_prompt.h"
#include "generate/sampling.h"
#include "serve/choice_stream.h"
#include "serve/scheduler.h"
#include "serve/server_impl.h"
#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

json top_entry_json(const TokenEntry& t) {
  return {{"token", t.token},
          {"logprob", *t.logprob},
          {"bytes", std::vector<int>(t.bytes.begin(), t.bytes.end())}};
}

// The legacy completions form: {tokens, token_logprobs, top_logprobs, text_offset}, with
// null for the first prompt token (nothing predicts it). The top dictionary holds the k
// most likely tokens and the token itself, as vLLM's.
json legacy_logprobs(const std::vector<TokenEntry>& es) {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  for (const TokenEntry& e : es) {
    tokens.push_back(e.token);
    offs.push_back(e.text_offset);
    if (!e.logprob) {
      lps.push_back(nullptr);
      tops.push_back(nullptr);
      continue;
    }
    lps.push_back(*e.logprob);
    json top = json::object();
    for (const TokenEntry& t : e.top) top[t.token] = *t.logprob;
    if (!top.contains(e.token)) top[e.token] = *e.logprob;
    tops.push_back(top);
  }
  return {
      {"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

// The chat form: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}.
json chat_logprobs(const std::vector<TokenEntry>& es) {
  json content = json::array();
  for (const TokenEntry& e : es) {
    json j = top_entry_json(e);
    json top = json::array();
    for (const TokenEntry& t : e.top) top.push_back(top_entry_json(t));
    j["top_logprobs"] = top;
    content.push_back(j);
  }
  return {{"content", content}};
}

json usage_json(int64_t prompt, int64_t completion) {
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

// One request in progress: its sequences and what the client has been sent.
struct Job {
  bool chat = false;
  bool logprobs = false;
  bool include_usage = false;
  std::string id, model;
  int64_t created = 0;
  int64_t prompt_tokens = 0;  // each prompt once, however many choices
  std::vector<std::shared_ptr<SeqHandle>> handles;
  std::vector<ChoiceStream> choices;
  std::vector<bool> role_sent;  // chat streams open each choice with the role
  uint64_t seen = 0;
  Clock::time_point start = Clock::now();
  bool first_token = false;
  ServeMetrics* metrics = nullptr;
  std::unique_ptr<InFlight> in_flight;

  bool done() const {
    for (const ChoiceStream& c : choices)
      if (!c.finished()) return false;
    return true;
  }
  // Waits up to `wait` for news and applies it; a choice that ends at a stop string stops
  // its sequence.
  void pump(std::chrono::milliseconds wait) {
    if (done()) return;
    seen = handles.front()->signal().wait(seen, wait);
    for (size_t i = 0; i < choices.size(); ++i) {
      if (choices[i].finished()) continue;
      SeqUpdate u = handles[i]->take();
      if (!first_token && !u.tokens.empty()) {
        first_token = true;
        metrics->observe_first_token(std::chrono::duration<double>(Clock::now() - start).count());
      }
      const bool from_scheduler = u.finished;
      if (choices[i].apply(std::move(u)) && !from_scheduler) handles[i]->cancel();
    }
  }
  void cancel() {
    for (auto& h : handles) h->cancel();
  }
  int64_t completion_tokens() const {
    int64_t n = 0;
    for (const ChoiceStream& c : choices) n += c.completion_tokens();
    return n;
  }
  // The first error a sequence ended with, if any.
  std::string error() const {
    for (const ChoiceStream& c : choices)
      if (!c.error().empty()) return c.error();
    return "";
  }
  void finish_metrics(int status) {
    metrics->add_tokens(prompt_tokens, completion_tokens());
    metrics->observe_request(chat ? "/v1/chat/completions" : "/v1/completions", status,
                             std::chrono::duration<double>(Clock::now() - start).count());
  }

  json head(const char* object) const {
    return {{"id", id}, {"object", object}, {"created", created}, {"model", model}};
  }
  json chunk(json choices) const {
    json j = head(chat ? "chat.completion.chunk" : "text_completion");
    j["choices"] = std::move(choices);
    return j;
  }
  // The whole answer, once done().
  json answer() {
    json out = head(chat ? "chat.completion" : "text_completion");
    json cs = json::array();
    for (size_t i = 0; i < choices.size(); ++i) {
      ChoiceDelta d = choices[i].take();
      json c = {{"index", i}, {"finish_reason", choices[i].finish_reason()}};
      if (chat) {
        c["message"] = {{"role", "assistant"}, {"content", d.text}};
        c["logprobs"] = logprobs ? chat_logprobs(d.entries) : json();
      } else {
        c["text"] = d.text;
        c["logprobs"] = logprobs ? legacy_logprobs(d.entries) : json();
      }
      cs.push_back(c);
    }
    out["choices"] = cs;
    out["usage"] = usage_json(prompt_tokens, completion_tokens());
    return out;
  }
  // Server-sent events for what is new; the last ones once done().
  std::string events() {
    std::string out;
    auto event = [&](const json& j) {
      out += "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
    };
    for (size_t i = 0; i < choices.size(); ++i) {
      if (chat && !role_sent[i]) {
        role_sent[i] = true;
        json c = {{"index", i},
                  {"delta", {{"role", "assistant"}, {"content", ""}}},
                  {"logprobs", nullptr},
                  {"finish_reason", nullptr}};
        event(chunk(json::array({c})));
      }
      if (ended_sent[i]) continue;  // its last chunk went out already
      const bool ended = choices[i].finished();
      ChoiceDelta d = choices[i].take();
      if (d.text.empty() && d.entries.empty() && !ended) continue;
      json c = {{"index", i}, {"finish_reason", ended ? json(choices[i].finish_reason()) : json()}};
      if (chat) {
        c["delta"] = d.text.empty() && ended ? json::object() : json{{"content", d.text}};
        c["logprobs"] = logprobs && !d.entries.empty() ? chat_logprobs(d.entries) : json();
        event(chunk(json::array({c})));
      } else {
        c["text"] = d.text;
        c["logprobs"] = logprobs ? legacy_logprobs(d.entries) : json();
        event(chunk(json::array({c})));
      }
      ended_sent[i] = ended;
    }
    return out;
  }
  std::vector<bool> ended_sent;
  bool all_ended_sent() const {
    for (bool b : ended_sent)
      if (!b) return false;
    return true;
  }
};

// Sends a job: whole when not streaming, else as server-sent events ending in [DONE].
void answer(std::shared_ptr<Job> job, bool stream, httplib::Response& res) {
  if (!stream) {
    while (!job->done()) job->pump(std::chrono::milliseconds(1000));
    const std::string err = job->error();
    if (!err.empty()) {
      job->finish_metrics(500);
      throw ApiError(500, err, "", "server_error");
    }
    job->finish_metrics(200);
    send_json(res, job->answer());
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto finished = std::make_shared<bool>(false);
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, finished](size_t, httplib::DataSink& sink) {
        job->pump(std::chrono::milliseconds(50));
        std::string out = job->events();
        if (job->done() && job->all_ended_sent()) {
          const std::string err = job->error();
          if (!err.empty())
            out += "data: " +
                   ApiError(500, err, "", "server_error")
                       .body()
                       .dump(-1, ' ', false, json::error_handler_t::replace) +
                   "\n\n";
          if (job->include_usage) {
            json u = job->chunk(json::array());
            u["usage"] = usage_json(job->prompt_tokens, job->completion_tokens());
            out += "data: " + u.dump() + "\n\n";
          }
          out += "data: [DONE]\n\n";
          *finished = true;
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          job->cancel();  // the client is gone: free the slots
          return false;
        }
        if (*finished) sink.done();
        return true;
      },
      [job, finished](bool) {
        job->cancel();
        job->finish_metrics(*finished ? 200 : 499);  // 499: the client closed the stream
      });
}

std::vector<std::shared_ptr<SeqHandle>> submit(Scheduler& s, std::vector<SeqSpec> specs) {
  auto handles = s.submit(std::move(specs));
  if (!handles)
    throw ApiError(429, "the server is busy: every batch slot and queue place is taken; retry", "",
                   "rate_limit_error", "rate_limit_exceeded");
  return std::move(*handles);
}

uint64_t request_seed(const SamplingFields& r) {
  if (r.seed) return *r.seed;
  thread_local std::mt19937_64 gen(std::random_device{}());
  return gen();
}

SeqSpec base_spec(const SamplingFields& r, int adapter) {
  SeqSpec s;
  s.sampling.temperature = r.temperature;
  s.sampling.top_p = r.top_p;
  s.sampling.top_k = r.top_k;
  s.sampling.repetition_penalty = r.repetition_penalty;
  s.frequency_penalty = r.frequency_penalty;
  s.presence_penalty = r.presence_penalty;
  s.stop_tokens = r.stop_token_ids;
  s.ignore_eos = r.ignore_eos;
  s.adapter = adapter;
  return s;
}

// A job for one request, before its choices: what every answer and metric carries.
std::shared_ptr<Job> new_job(std::atomic<int64_t>& in_flight, ServeMetrics& metrics,
                             Clock::time_point start, const char* id_prefix,
                             const SamplingFields& r, const std::string& served_name,
                             bool logprobs) {
  auto job = std::make_shared<Job>();
  job->in_flight = std::make_unique<InFlight>(in_flight);
  job->metrics = &metrics;
  job->start = start;
  job->id = random_id(id_prefix);
  job->model = r.model.empty() ? served_name : r.model;
  job->created = unix_time();
  job->logprobs = logprobs;
  job->include_usage = r.include_usage;
  return job;
}

// Queues the job's sequences and answers, streamed or whole.
void run_job(std::shared_ptr<Job> job, Scheduler& scheduler, std::vector<SeqSpec> specs,
             bool stream, httplib::Response& res) {
  job->role_sent.assign(job->choices.size(), false);
  job->ended_sent.assign(job->choices.size(), false);
  job->handles = submit(scheduler, std::move(specs));
  answer(std::move(job), stream, res);
}

// A generation route's frame: an ApiError thrown by `body` becomes its status and error
// object, and counts in the metrics (a 500 was counted where it was raised).
template <class Body>
void answer_errors(ServeMetrics& metrics, const char* route, httplib::Response& res, Body&& body) {
  const auto start = Clock::now();
  try {
    body(start);
  } catch (const ApiError& e) {
    if (e.status != 500)
      metrics.observe_request(route, e.status,
                              std::chrono::duration<double>(Clock::now() - start).count());
    send_error(res, e);
  }
}

}  // namespace

void ApiServer::Impl::completions(const httplib::Request& req, httplib::Response& res) {
  answer_errors(metrics, "/v1/completions", res, [&](Clock::time_point start) {
    auto m = ready_model();
    const Tokenizer& tok = *m->tokenizer;
    const CompletionRequest r =
        parse_completion_request(parse_json_body(req.body), tok, opt.limits);
    const int adapter = adapter_of(*m, r.model);
    auto job = new_job(in_flight, metrics, start, "cmpl-", r, m->name, r.logprobs >= 0);
    const uint64_t seed = request_seed(r);
    std::vector<SeqSpec> specs;
    for (size_t i = 0; i < r.prompts.size(); ++i) {
      const std::vector<int32_t>& prompt = r.prompts[i];
      const std::string param = r.prompts.size() > 1 ? str_cat("prompt[", i, "]") : "prompt";
      const int64_t max_tokens = checked_max_tokens(r, prompt.size(), 16, opt.limits, param);
      job->prompt_tokens += int64_t(prompt.size());
      for (int j = 0; j < r.n; ++j) {
        SeqSpec s = base_spec(r, adapter);
        s.prompt = prompt;
        s.max_tokens = max_tokens;
        s.seed = sequence_seed(seed, i * size_t(r.n) + size_t(j));
        s.logprobs = r.logprobs;
        s.prompt_logprobs = r.echo && r.logprobs >= 0;
        specs.push_back(std::move(s));
        ChoiceStream::Options o;
        o.stops = r.stop;
        o.logprobs = r.logprobs >= 0;
        o.echo = r.echo;
        job->choices.emplace_back(tok, prompt, o);
      }
    }
    run_job(job, *m->scheduler, std::move(specs), r.stream, res);
  });
}

void ApiServer::Impl::chat(const httplib::Request& req, httplib::Response& res) {
  answer_errors(metrics, "/v1/chat/completions", res, [&](Clock::time_point start) {
    auto m = ready_model();
    const Tokenizer& tok = *m->tokenizer;
    const ChatRequest r = parse_chat_request(parse_json_body(req.body), opt.limits);
    const int adapter = adapter_of(*m, r.model);
    if (!m->chat_error.empty()) throw bad_field("messages", m->chat_error);
    std::vector<int32_t> prompt;
    try {
      prompt = chat_prompt_ids(tok, r.messages);
    } catch (const Error& e) {
      throw bad_field("messages", e.what());
    }
    const int64_t max_tokens =
        checked_max_tokens(r, prompt.size(), opt.limits.context, opt.limits, "messages");
    auto job = new_job(in_flight, metrics, start, "chatcmpl-", r, m->name, r.logprobs);
    job->chat = true;
    job->prompt_tokens = int64_t(prompt.size());
    const uint64_t seed = request_seed(r);
    std::vector<SeqSpec> specs;
    for (int j = 0; j < r.n; ++j) {
      SeqSpec s = base_spec(r, adapter);
      s.prompt = prompt;
      s.max_tokens = max_tokens;
      s.seed = sequence_seed(seed, size_t(j));
      s.logprobs = r.logprobs ? r.top_logprobs : -1;
      for (int32_t id : m->chat_stop_tokens) s.stop_tokens.push_back(id);
      specs.push_back(std::move(s));
      ChoiceStream::Options o;
      o.stops = r.stop;
      o.logprobs = r.logprobs;
      o.strip_leading = true;
      job->choices.emplace_back(tok, prompt, o);
    }
    run_job(job, *m->scheduler, std::move(specs), r.stream, res);
  });
}

}  // namespace lathe
