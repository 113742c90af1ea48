// The bodies `lathe serve` parses: /v1/completions and /v1/chat/completions through
// parse_json_body, the request parsers and the prompt checks, and token lists (/detokenize),
// with the stories260K tokenizer. The input's first byte picks the endpoint. Every bad
// body must end in an ApiError (answered 400); anything else escaping is a server crash.
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "serve/api_error.h"
#include "serve/openai_request.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<lathe::Tokenizer> tok =
      lathe::Tokenizer::load(std::string(LATHE_SOURCE_DIR) + "/examples/stories260K");
  if (size == 0) return 0;
  lathe::ServeLimits limits;
  limits.context = 512;
  limits.max_sequences = 80;
  const std::string body(lathe::fuzz::as_text(data + 1, size - 1));
  try {
    const nlohmann::json j = lathe::parse_json_body(body);
    switch (data[0] % 3) {
      case 0: {
        const lathe::CompletionRequest r = lathe::parse_completion_request(j, *tok, limits);
        for (const auto& p : r.prompts)
          (void)lathe::checked_max_tokens(r, p.size(), 16, limits, "prompt");
        break;
      }
      case 1: {
        const lathe::ChatRequest r = lathe::parse_chat_request(j, limits);
        (void)lathe::checked_max_tokens(r, r.messages.size(), 16, limits, "messages");
        break;
      }
      default:
        if (j.contains("tokens"))
          (void)tok->decode(lathe::parse_token_list(j["tokens"], "tokens", tok->vocab_size()));
    }
  } catch (const lathe::ApiError&) {
    // A 400, 413, ... answer: what bad input must end in.
  }
  return 0;
}
