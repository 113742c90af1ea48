// Chat prompts for generation, rendered by the same code that renders chat training data
// (data.format=chat: Llama 3 headers when the vocabulary has <|start_header_id|>, else
// Llama 2 [INST]), so a fine-tuned model sees at inference exactly what it was trained on.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lathe {

class Tokenizer;

struct ChatMessage {
  std::string role;  // "system" (first only), "user" or "assistant"
  std::string content;
};

// The tokens of `messages` (ending with a user turn) followed by the start of the
// assistant's reply: "<|start_header_id|>assistant<|end_header_id|>\n\n" (Llama 3) or
// the closing " [/INST]" (Llama 2).
std::vector<int32_t> chat_prompt_ids(const Tokenizer& tokenizer,
                                     const std::vector<ChatMessage>& messages);

// The tokens that end a reply besides EOS: <|eot_id|> in a Llama 3 vocabulary.
std::vector<int32_t> chat_stop_tokens(const Tokenizer& tokenizer);

}  // namespace lathe
