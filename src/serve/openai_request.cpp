#include "serve/openai_request.h"

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/json_number.h"
#include "serve/api_error.h"
#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {

using json = nlohmann::json;

std::string type_of(const json& v) { return v.is_null() ? "null" : v.type_name(); }

// Fields lathe reads, and fields it accepts only at their neutral value.
const std::set<std::string> kCommonFields = {"model",
                                             "max_tokens",
                                             "temperature",
                                             "top_p",
                                             "top_k",
                                             "seed",
                                             "n",
                                             "stop",
                                             "stream",
                                             "stream_options",
                                             "user",
                                             "frequency_penalty",
                                             "presence_penalty",
                                             "repetition_penalty",
                                             "stop_token_ids",
                                             "ignore_eos",
                                             "logit_bias",
                                             "best_of"};
const std::set<std::string> kCompletionFields = {"prompt", "echo", "logprobs", "suffix"};
const std::set<std::string> kChatFields = {
    "messages",        "logprobs", "top_logprobs", "max_completion_tokens",
    "response_format", "tools",    "tool_choice",  "parallel_tool_calls",
    "metadata",        "store"};

void refuse_unknown(const json& body, const std::set<std::string>& own) {
  for (const auto& [key, v] : body.items())
    if (!kCommonFields.count(key) && !own.count(key))
      throw bad_field(key, str_cat("unrecognized request argument: ", key));
}

bool get_bool(const json& body, const char* key, bool fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_boolean())
    throw bad_field(key, str_cat(key, " must be true or false, got ", type_of(body[key])));
  return body[key].get<bool>();
}

std::optional<int64_t> get_int(const json& body, const char* key, int64_t lo, int64_t hi) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  const json& v = body[key];
  int64_t x = 0;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
      throw bad_field(key, str_cat(key, " is too large: ", v.dump()));
    x = v.get<int64_t>();
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9e15) {
    x = int64_t(v.get<double>());  // 16.0 is the integer 16, as JSON has one number type
  } else {
    throw bad_field(
        key, str_cat(key, " must be an integer, got ", v.is_number() ? v.dump() : type_of(v)));
  }
  if (x < lo || x > hi)
    throw bad_field(key, str_cat(key, " must be in [", lo, ", ", hi, "], got ", x));
  return x;
}

float get_number(const json& body, const char* key, float fallback, double lo, double hi,
                 bool lo_open = false) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  const json& v = body[key];
  if (!v.is_number()) throw bad_field(key, str_cat(key, " must be a number, got ", type_of(v)));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo))
    throw bad_field(
        key, str_cat(key, " must be in ", lo_open ? "(" : "[", lo, ", ", hi, "], got ", v.dump()));
  return float(x);
}

void parse_sampling(const json& body, const ServeLimits& limits, SamplingFields& r) {
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string())
      throw bad_field("model", str_cat("model must be a string, got ", type_of(body["model"])));
    r.model = body["model"].get<std::string>();
  }
  const int64_t most = limits.max_tokens > 0 ? limits.max_tokens : limits.context;
  r.max_tokens = get_int(body, "max_tokens", 0, most);
  r.temperature = get_number(body, "temperature", 1, 0, 100);
  r.top_p = get_number(body, "top_p", 1, 0, 1, /*lo_open=*/true);
  r.top_k = int(get_int(body, "top_k", -1, 1 << 30).value_or(0));
  if (r.top_k < 0) r.top_k = 0;
  r.repetition_penalty = get_number(body, "repetition_penalty", 1, 0, 100, true);
  r.frequency_penalty = get_number(body, "frequency_penalty", 0, -2, 2);
  r.presence_penalty = get_number(body, "presence_penalty", 0, -2, 2);
  if (auto s = get_int(body, "seed", INT64_MIN, INT64_MAX)) r.seed = uint64_t(*s);
  r.n = int(get_int(body, "n", 1, limits.max_n).value_or(1));
  if (auto b = get_int(body, "best_of", 1, limits.max_n); b && *b != r.n)
    throw bad_field("best_of", "best_of is not supported except equal to n");
  if (body.contains("logit_bias") && !body["logit_bias"].is_null() &&
      !(body["logit_bias"].is_object() && body["logit_bias"].empty()))
    throw bad_field("logit_bias", "logit_bias is not supported");
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& s = body["stop"];
    if (s.is_string()) {
      r.stop.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      for (const json& x : s) {
        if (!x.is_string())
          throw bad_field("stop", str_cat("stop must be a string or a list of strings; an item is ",
                                          type_of(x)));
        r.stop.push_back(x.get<std::string>());
      }
    } else {
      throw bad_field("stop",
                      str_cat("stop must be a string or a list of strings, got ", type_of(s)));
    }
    if (int(r.stop.size()) > limits.max_stop)
      throw bad_field("stop", str_cat("stop has ", r.stop.size(), " strings; at most ",
                                      limits.max_stop, " are allowed"));
    std::erase_if(r.stop, [](const std::string& x) { return x.empty(); });
  }
  if (body.contains("stop_token_ids") && !body["stop_token_ids"].is_null())
    r.stop_token_ids = parse_token_list(body["stop_token_ids"], "stop_token_ids", INT32_MAX);
  r.ignore_eos = get_bool(body, "ignore_eos", false);
  r.stream = get_bool(body, "stream", false);
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    const json& o = body["stream_options"];
    if (!o.is_object()) throw bad_field("stream_options", "stream_options must be an object");
    if (!r.stream)
      throw bad_field("stream_options", "stream_options is only allowed with stream: true");
    for (const auto& [k, v] : o.items())
      if (k != "include_usage" && k != "continuous_usage_stats")
        throw bad_field("stream_options", str_cat("stream_options has an unknown key: ", k));
    r.include_usage = get_bool(o, "include_usage", false);
  }
  if (body.contains("user") && !body["user"].is_null() && !body["user"].is_string())
    throw bad_field("user", "user must be a string");
}

// A message's content: a string, or OpenAI's list of parts of which only text is read.
std::string message_content(const json& m, size_t i) {
  const std::string param = str_cat("messages[", i, "].content");
  if (!m.contains("content") || m["content"].is_null())
    throw bad_field(param, str_cat(param, " is missing"));
  const json& c = m["content"];
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array())
    throw bad_field(param,
                    str_cat(param, " must be a string or a list of text parts, got ", type_of(c)));
  std::string text;
  for (const json& part : c) {
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
        !part.contains("text") || !part["text"].is_string())
      throw bad_field(
          param, str_cat(param, ": only {\"type\": \"text\", \"text\": ...} parts are supported"));
    text += part["text"].get<std::string>();
  }
  return text;
}

}  // namespace

json parse_json_body(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // syntax, invalid UTF-8, a number out of range
    throw ApiError(400, str_cat("the request body is not valid JSON: ", e.what()));
  }
  if (!j.is_object())
    throw ApiError(400, str_cat("the request body must be a JSON object, got ", type_of(j)));
  return j;
}

std::vector<int32_t> parse_token_list(const json& v, const std::string& param, int32_t vocab) {
  if (!v.is_array())
    throw bad_field(param, str_cat(param, " must be a list of token ids, got ", type_of(v)));
  std::vector<int32_t> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::optional<int32_t> id = json_integer<int32_t>(v[i]);
    if (!id || *id < 0 || *id >= vocab)
      throw bad_field(param, str_cat(param, "[", i, "] must be a token id in [0, ", vocab,
                                     "), got ", v[i].dump()));
    out.push_back(*id);
  }
  return out;
}

CompletionRequest parse_completion_request(const json& body, const Tokenizer& tok,
                                           const ServeLimits& limits) {
  refuse_unknown(body, kCompletionFields);
  CompletionRequest r;
  parse_sampling(body, limits, r);
  if (body.contains("suffix") && !body["suffix"].is_null() &&
      !(body["suffix"].is_string() && body["suffix"].get<std::string>().empty()))
    throw bad_field("suffix", "suffix is not supported");
  r.echo = get_bool(body, "echo", false);
  r.logprobs = int(get_int(body, "logprobs", 0, limits.max_logprobs).value_or(-1));

  if (!body.contains("prompt") || body["prompt"].is_null())
    throw bad_field("prompt", "prompt is missing");
  const json& p = body["prompt"];
  const int32_t V = tok.vocab_size();
  auto encode = [&](const std::string& text) {
    std::vector<int32_t> ids = tok.encode(text, /*add_special=*/true);
    if (ids.empty())
      throw bad_field("prompt", "the prompt is empty (and the tokenizer adds no BOS)");
    return ids;
  };
  if (p.is_string()) {
    r.prompts.push_back(encode(p.get<std::string>()));
  } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
    r.prompts.push_back(parse_token_list(p, "prompt", V));
  } else if (p.is_array() && !p.empty()) {
    if (int64_t(p.size()) > limits.max_prompts)
      throw bad_field("prompt", str_cat("prompt has ", p.size(), " prompts; at most ",
                                        limits.max_prompts, " are allowed per request"));
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i].is_string()) {
        r.prompts.push_back(encode(p[i].get<std::string>()));
      } else if (p[i].is_array() && !p[i].empty()) {
        r.prompts.push_back(parse_token_list(p[i], str_cat("prompt[", i, "]"), V));
      } else {
        throw bad_field("prompt", str_cat("prompt[", i,
                                          "] must be a text or a non-empty list of "
                                          "token ids, got ",
                                          type_of(p[i])));
      }
    }
  } else {
    throw bad_field("prompt", str_cat("prompt must be a text, a list of texts, a list of token "
                                      "ids or a list of such lists (non-empty), got ",
                                      p.is_array() ? "an empty list" : type_of(p)));
  }
  const int64_t seqs = int64_t(r.prompts.size()) * r.n;
  if (limits.max_sequences > 0 && seqs > limits.max_sequences)
    throw bad_field("n", str_cat(r.prompts.size(), " prompts × n = ", seqs,
                                 " sequences, more than this server runs at once (",
                                 limits.max_sequences, ")"));
  return r;
}

ChatRequest parse_chat_request(const json& body, const ServeLimits& limits) {
  refuse_unknown(body, kChatFields);
  ChatRequest r;
  parse_sampling(body, limits, r);
  if (auto m = get_int(body, "max_completion_tokens", 0,
                       limits.max_tokens > 0 ? limits.max_tokens : limits.context))
    r.max_tokens = m;
  r.logprobs = get_bool(body, "logprobs", false);
  if (auto k = get_int(body, "top_logprobs", 0, limits.max_logprobs)) {
    if (!r.logprobs && *k > 0) throw bad_field("top_logprobs", "top_logprobs needs logprobs: true");
    r.top_logprobs = int(*k);
  }
  if (body.contains("tools") && !body["tools"].is_null() &&
      !(body["tools"].is_array() && body["tools"].empty()))
    throw bad_field("tools", "tools are not supported");
  if (body.contains("response_format") && !body["response_format"].is_null()) {
    const json& f = body["response_format"];
    if (!(f.is_object() && f.value("type", "") == "text"))
      throw bad_field("response_format", "only response_format {\"type\": \"text\"} is supported");
  }
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    throw bad_field("messages", "messages must be a non-empty list of {role, content}");
  const json& msgs = body["messages"];
  for (size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw bad_field(str_cat("messages[", i, "].role"),
                      str_cat("messages[", i, "] must be an object with a string role"));
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for it
    if (role != "system" && role != "user" && role != "assistant")
      throw bad_field(
          str_cat("messages[", i, "].role"),
          str_cat("messages[", i, "].role is \"", role, "\"; expected system, user or assistant"));
    r.messages.push_back({role, message_content(m, i)});
  }
  if (r.messages.back().role != "user")
    throw bad_field("messages", "the last message must be the user's");
  if (limits.max_sequences > 0 && r.n > limits.max_sequences)
    throw bad_field("n", str_cat("n = ", r.n, " is more sequences than this server runs at once (",
                                 limits.max_sequences, ")"));
  return r;
}

int64_t checked_max_tokens(const SamplingFields& r, size_t prompt_tokens, int64_t fallback,
                           const ServeLimits& limits, const std::string& param) {
  const int64_t L = int64_t(prompt_tokens);
  const int64_t want = r.max_tokens.value_or(fallback);
  // A prompt must leave room for one new token, unless none is asked for (max_tokens 0:
  // only the prompt's log-probabilities).
  if (L + (want > 0 ? 1 : 0) > limits.context)
    throw bad_field(
        param, str_cat("the prompt has ", L, " tokens; this server's context is ", limits.context,
                       " tokens (--max-model-len), which must also "
                       "hold the new tokens"));
  return std::min(want, limits.context - L);
}

}  // namespace lathe
