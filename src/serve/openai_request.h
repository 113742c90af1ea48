// The bodies of OpenAI's /v1/completions and /v1/chat/completions, parsed and checked.
// Every field is type- and range-checked; a bad one is an ApiError 400 whose `param` names
// it. Fields with a meaning lathe does not implement (suffix, logit_bias, tools, ...) are
// refused by name rather than ignored, and so are unknown fields, so a client never gets
// an answer that silently left out what it asked for.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "generate/chat_prompt.h"

namespace lathe {

class Tokenizer;

struct ServeLimits {
  int64_t context = 0;        // tokens a sequence may hold, prompt and output (the model's or less)
  int64_t max_tokens = 0;     // largest max_tokens a request may ask for (0: the context)
  int max_n = 16;             // choices per prompt
  int max_prompts = 64;       // prompts in one completions request
  int max_logprobs = 20;      // top log-probabilities per token
  int max_stop = 16;          // stop strings per request
  int64_t max_sequences = 0;  // prompts × n in one request (0: no limit here)
};

// What both endpoints share.
struct SamplingFields {
  std::string model;
  std::optional<int64_t> max_tokens;  // absent: the endpoint's default
  float temperature = 1;
  float top_p = 1;
  int top_k = 0;                 // extension (vLLM): 0 or -1 = off
  float repetition_penalty = 1;  // extension (vLLM, HF): 1 = off
  float frequency_penalty = 0, presence_penalty = 0;
  std::optional<uint64_t> seed;
  int n = 1;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;  // extension (vLLM)
  bool ignore_eos = false;              // extension (vLLM), for benchmarks
  bool stream = false, include_usage = false;
};

struct CompletionRequest : SamplingFields {
  // Token ids per prompt: a text prompt is encoded with the tokenizer's special tokens
  // (BOS for Llama), a token prompt is taken as given.
  std::vector<std::vector<int32_t>> prompts;
  bool echo = false;
  int logprobs = -1;  // -1: none; k: each token's and the k most likely
};

struct ChatRequest : SamplingFields {
  std::vector<ChatMessage> messages;
  bool logprobs = false;
  int top_logprobs = 0;
};

// The body as a JSON object; 400 when it is not one.
nlohmann::json parse_json_body(const std::string& body);

CompletionRequest parse_completion_request(const nlohmann::json& body, const Tokenizer& tokenizer,
                                           const ServeLimits& limits);
ChatRequest parse_chat_request(const nlohmann::json& body, const ServeLimits& limits);

// The checks that need the prompt's tokens: its length against the context and the
// effective max_tokens (the request's, capped by what the context has left; `fallback`
// when absent). `param` names the prompt field ("prompt" or "messages").
int64_t checked_max_tokens(const SamplingFields& r, size_t prompt_tokens, int64_t fallback,
                           const ServeLimits& limits, const std::string& param);

// POST /tokenize: {"prompt": text, "add_special_tokens": bool} or {"messages": [...]};
// POST /detokenize: {"tokens": [ids]}.
std::vector<int32_t> parse_token_list(const nlohmann::json& v, const std::string& param,
                                      int32_t vocab);

}  // namespace lathe
