// Continuous batching for the server: one thread owns the model's Decoder and its KV cache;
// sequences join the running batch between steps and leave it as soon as they end, and a
// long prompt is prefilled a chunk per step so the sequences already decoding keep going.
//
// The scheduler deals in tokens only: it samples, stops at EOS, stop tokens, max_tokens or
// the context, and reports log-probabilities. Text (detokenizing, stop strings, UTF-8) is
// the HTTP thread's business; that thread cancels a sequence once a stop string appears.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "generate/sampling.h"
#include "model/llama.h"

namespace lathe {

class Decoder;
class LoraBank;

// A token with its log-probability under the model (the raw distribution, before
// temperature, top-k/top-p and penalties) and the most likely tokens at its position.
struct TokenLogprob {
  int32_t id = -1;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // best first
  // The EOS or stop token that ended the sequence: reported (with logprobs only) so that
  // a request's tokens are all there, as OpenAI and vLLM list them, but not part of the text.
  bool ends = false;
};

// One sequence to generate: a prompt (one choice of one request).
struct SeqSpec {
  std::vector<int32_t> prompt;  // at least one token
  int64_t max_tokens = 16;      // new tokens at most (0: only the prompt's log-probabilities)
  SamplingParams sampling;
  float frequency_penalty = 0, presence_penalty = 0;  // OpenAI's, over the generated tokens
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;  // end the sequence (not part of the output), like EOS
  bool ignore_eos = false;
  int logprobs = -1;             // -1: none; k >= 0: each token's and the k most likely
  bool prompt_logprobs = false;  // also every prompt token's after the first (echo)
  int adapter = -1;              // LoRA adapter index in the bank; -1: the base model
};

// What a sequence produced since the consumer last looked.
struct SeqUpdate {
  std::vector<TokenLogprob> prompt;  // prompt tokens 1.. (with prompt_logprobs), once
  std::vector<TokenLogprob> tokens;  // generated tokens (logprob fields when asked)
  bool finished = false;
  std::string finish_reason;  // "stop" (EOS or a stop token) or "length"
  std::string error;          // set when the sequence could not run
};

// Wakes the thread that answers a request when any of its sequences has news.
struct SeqSignal {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t version = 0;  // bumped on every change
  // Waits until version differs from `seen` or `timeout` passes; returns the version.
  uint64_t wait(uint64_t seen, std::chrono::milliseconds timeout);
  void bump();
};

// Shared by the scheduler (producer) and the request's thread (consumer).
class SeqHandle {
 public:
  explicit SeqHandle(std::shared_ptr<SeqSignal> signal) : signal_(std::move(signal)) {}
  // What arrived since the last call (nothing new: empty, finished as before).
  SeqUpdate take();
  // The consumer is done with the sequence (client gone, stop string found): the
  // scheduler frees its slot at the next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  SeqSignal& signal() { return *signal_; }

  void push_prompt(std::vector<TokenLogprob> lp);
  void push_token(TokenLogprob t);
  void finish(std::string reason, std::string error = "");

 private:
  std::shared_ptr<SeqSignal> signal_;
  std::mutex mu_;
  SeqUpdate pending_;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int64_t slots = 16;         // sequences decoded together (KV cache slots)
  int64_t context = 0;        // tokens per sequence, prompt and output (0: the model's)
  int64_t max_waiting = 64;   // sequences waiting for a slot; more are refused
  int64_t step_tokens = 256;  // prompt tokens prefilled per step (chunked prefill)
  // Logit rows per step are also bounded by this many floats (prompt log-probabilities of
  // a long prompt with a 128K vocabulary would otherwise take gigabytes).
  int64_t max_logit_floats = int64_t(1) << 23;
};

// Counters for /metrics; read from any thread.
struct SchedulerCounters {
  std::atomic<int64_t> waiting{0}, running{0};
  std::atomic<int64_t> prompt_tokens{0}, generated_tokens{0}, steps{0};
  std::atomic<int64_t> step_rows{0};
};

class Scheduler {
 public:
  // `bank` may be null (no adapters). `eos` ends every sequence (unless ignore_eos).
  Scheduler(LlamaModel& model, Backend& be, const LoraBank* bank, SchedulerOptions options,
            std::vector<int32_t> eos);
  ~Scheduler();  // shutdown()
  // Stops the thread; unfinished sequences end with an error. Idempotent.
  void shutdown();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // All or none: nullopt when the running batch and the waiting room cannot take them.
  std::optional<std::vector<std::shared_ptr<SeqHandle>>> submit(std::vector<SeqSpec> specs);

  int64_t context() const { return context_; }
  int64_t slots() const { return opt_.slots; }
  size_t kv_cache_bytes() const;
  const SchedulerCounters& counters() const { return counters_; }

 private:
  struct Seq;
  void loop();
  void admit();
  void step();
  void sample_into(Seq& s, float* z);
  void end(Seq& s, const char* reason, const std::string& error = "");

  LlamaModel& model_;
  Backend& be_;
  const LoraBank* bank_;
  SchedulerOptions opt_;
  std::vector<int32_t> eos_;
  int64_t context_ = 0;
  std::unique_ptr<Decoder> dec_;
  SchedulerCounters counters_;

  std::mutex mu_;  // guards inbox_, stop_
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Seq>> inbox_;
  int64_t in_system_ = 0;  // sequences submitted and not yet ended (guarded by mu_)
  bool stop_ = false;

  // The scheduler thread's own state.
  std::deque<std::unique_ptr<Seq>> waiting_;
  std::vector<std::unique_ptr<Seq>> running_;
  std::vector<int32_t> free_slots_;
  std::vector<float> logits_;
  std::thread thread_;
};

// log_softmax of logits[V] at `id`, and the k most likely (best first, ties by id).
TokenLogprob token_logprob(const float* logits, int64_t V, int32_t id, int k);

}  // namespace lathe
