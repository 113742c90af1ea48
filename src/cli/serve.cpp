// lathe serve --model DIR [--lora NAME=DIR ...] [--port 8000] [--api-key KEY]: an
// OpenAI-compatible HTTP server (src/serve/server.h) with continuous batching. It listens
// at once (/health answers 503 while the model loads), and SIGTERM or Ctrl-C drains the
// requests in flight before it exits 0.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backend/select.h"
#include "cli/verbs.h"
#include "core/error.h"
#include "generate/chat_prompt.h"
#include "generate/generator.h"
#include "generate/lora_bank.h"
#include "io/safetensors.h"
#include "serve/scheduler.h"
#include "serve/server.h"
#include "tokenizer/tokenizer.h"

namespace lathe::cli {
namespace {

struct ServeFlags {
  std::string model, name, host = "127.0.0.1", api_key, device = "auto", precision = "fp32";
  std::vector<std::string> loras;
  int port = 8000, threads = 0, http_threads = 0;
  int64_t max_batch = 16, max_queue = 64, max_model_len = 0, prefill_chunk = 256;
  int64_t max_body = int64_t(4) << 20;
  ServeLimits limits;
  double drain_timeout = 30;
};

std::pair<std::string, std::string> split_lora(const std::string& arg) {
  const size_t eq = arg.find('=');
  LATHE_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < arg.size(), "--lora ", arg,
              ": expected NAME=DIR, e.g. --lora sql=runs/sql/final");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

int run_serve(ServeFlags f) {
  namespace fs = std::filesystem;
  LATHE_CHECK(fs::is_directory(f.model), "--model ", f.model,
              ": not a folder; give an HF model folder with config.json and *.safetensors");
  if (f.api_key.empty())
    if (const char* k = std::getenv("LATHE_API_KEY")) f.api_key = k;
  // SIGTERM and SIGINT wait for a thread of ours (sigwait below): blocked here, before any
  // thread starts, so every thread inherits the mask and none is interrupted by them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const LlamaConfig cfg = llama_config_from_json_file((fs::path(f.model) / "config.json").string());
  const int64_t context = f.max_model_len > 0
                              ? std::min<int64_t>(f.max_model_len, cfg.max_position_embeddings)
                              : cfg.max_position_embeddings;
  ServeOptions so;
  so.host = f.host;
  so.port = f.port;
  so.api_key = f.api_key;
  so.max_body_bytes = size_t(f.max_body);
  so.limits = f.limits;
  so.limits.context = context;
  so.limits.max_sequences = f.max_batch + f.max_queue;
  so.http_threads = f.http_threads;
  ApiServer server(so);
  std::fprintf(stderr, "lathe serve: listening on %s (loading %s)\n", server.url().c_str(),
               f.model.c_str());

  auto be = make_backend(f.device, f.threads);
  std::fprintf(stderr, "device: %s\n", be->description().c_str());
  LlamaModel model(cfg, *be, precision_from_name(f.precision), false);
  model.load(SafetensorsModel(f.model));
  std::unique_ptr<Tokenizer> tok = Tokenizer::load(f.model);
  std::vector<int32_t> eos = read_eos_token_ids(f.model);
  if (tok->eos_id() >= 0 && std::find(eos.begin(), eos.end(), tok->eos_id()) == eos.end())
    eos.push_back(tok->eos_id());
  std::unique_ptr<LoraBank> bank;
  ServedModel served;
  served.name =
      f.name.empty() ? fs::absolute(f.model).lexically_normal().filename().string() : f.name;
  if (served.name.empty()) served.name = "model";
  if (!f.loras.empty()) {
    bank = std::make_unique<LoraBank>(model, *be);
    for (const std::string& arg : f.loras) {
      const auto [name, dir] = split_lora(arg);
      LATHE_CHECK(name != served.name, "--lora ", arg, ": the name is the base model's (",
                  served.name, "); choose another");
      bank->add(name, dir);
      served.adapters.push_back(name);
      const LoraSpec& s = bank->spec(bank->size() - 1);
      std::fprintf(stderr, "adapter %s: %s (r=%lld, alpha=%g, %zu projections)\n", name.c_str(),
                   dir.c_str(), static_cast<long long>(s.r), s.alpha, s.targets.size());
    }
  }
  SchedulerOptions sched;
  sched.slots = f.max_batch;
  sched.max_waiting = f.max_queue;
  sched.context = context;
  sched.step_tokens = f.prefill_chunk;
  Scheduler scheduler(model, *be, bank.get(), sched, eos);
  served.tokenizer = tok.get();
  served.scheduler = &scheduler;
  served.chat_template = read_chat_template(f.model);
  served.chat_error = chat_template_mismatch(*tok, served.chat_template);
  served.chat_stop_tokens = chat_stop_tokens(*tok);
  if (!served.chat_error.empty())
    std::fprintf(stderr, "warning: /v1/chat/completions is off: %s\n", served.chat_error.c_str());
  server.set_model(served);
  std::fprintf(stderr,
               "lathe serve: ready at %s/v1 as \"%s\": batch %lld, queue %lld, context %lld, "
               "KV cache %.1f MiB, %d threads%s\n",
               server.url().c_str(), served.name.c_str(), static_cast<long long>(f.max_batch),
               static_cast<long long>(f.max_queue), static_cast<long long>(context),
               double(scheduler.kv_cache_bytes()) / (1 << 20), be->threads(),
               f.api_key.empty() ? "" : ", API key required");

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "lathe serve: %s, draining requests in flight (up to %.0f s)\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", f.drain_timeout);
  const int64_t left = server.drain(f.drain_timeout);
  if (left > 0)
    std::fprintf(stderr, "lathe serve: %lld requests still running after %.0f s; stopping them\n",
                 static_cast<long long>(left), f.drain_timeout);
  scheduler.shutdown();  // ends what is left, so every handler can answer
  server.stop();
  std::fprintf(stderr, "lathe serve: stopped\n");
  return 0;
}

}  // namespace

Action add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve", "Serve a model (and LoRA adapters) over an OpenAI-compatible HTTP API");
  auto f = std::make_shared<ServeFlags>();
  cmd->add_option("--model", f->model, "HF model folder (config.json, *.safetensors, tokenizer)")
      ->required();
  cmd->add_option("--lora", f->loras,
                  "NAME=DIR: a PEFT LoRA adapter on the base, chosen by a request's \"model\": "
                  "NAME (repeatable; applied unmerged, several share a batch)")
      ->allow_extra_args(false);
  cmd->add_option("--served-model-name", f->name,
                  "the base model's id in requests and /v1/models (default: the folder's name)");
  cmd->add_option("--host", f->host,
                  "address to listen on; the default serves this machine only (0.0.0.0: every "
                  "interface)")
      ->capture_default_str();
  cmd->add_option("--port", f->port, "port (0: any free one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", f->api_key,
                  "require Authorization: Bearer KEY on every endpoint but /health (default: "
                  "$LATHE_API_KEY, else none)");
  cmd->add_option("--max-batch", f->max_batch,
                  "sequences decoded together (KV cache slots); each request choice is one")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  cmd->add_option("--max-queue", f->max_queue,
                  "sequences waiting for a slot; past that, requests get 429 with Retry-After")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  cmd->add_option(
         "--max-model-len", f->max_model_len,
         "tokens per sequence, prompt and output (0: the model's max_position_embeddings); "
         "sizes the KV cache")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(1) << 24));
  cmd->add_option("--max-tokens", f->limits.max_tokens,
                  "largest max_tokens a request may ask for (0: the context)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(1) << 24));
  cmd->add_option("--max-n", f->limits.max_n, "largest n (choices per prompt)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--max-prompts", f->limits.max_prompts, "prompts in one completions request")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--max-body", f->max_body, "request body bytes; larger bodies get 413")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1024), int64_t(1) << 32));
  cmd->add_option("--prefill-chunk", f->prefill_chunk,
                  "prompt tokens prefilled per step, so a long prompt does not stall the batch")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  cmd->add_option("--drain-timeout", f->drain_timeout,
                  "seconds SIGTERM waits for requests in flight before exiting")
      ->capture_default_str();
  cmd->add_option("--threads", f->threads, "compute threads (0 = all cores)")
      ->capture_default_str();
  cmd->add_option("--http-threads", f->http_threads,
                  "connection threads (0: --max-batch + --max-queue + 16)")
      ->capture_default_str();
  cmd->add_option("--device", f->device, "cpu, cuda, or auto")->capture_default_str();
  cmd->add_option("--precision", f->precision, "fp32 or bf16")->capture_default_str();
  return [f]() { return run_serve(*f); };
}

}  // namespace lathe::cli
