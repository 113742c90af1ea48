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

// Reads the model folder's chat template (tokenizer_config.json's "chat_template": a
// string, or HF's list of named templates of which "default" is taken); "" when none.
std::string read_chat_template(const std::string& model_dir);
// Why chat_prompt_ids cannot stand for `chat_template` (a Jinja template lathe does not
// execute): "" when the template is empty or is the family lathe renders for this
// vocabulary (Llama 3 headers, Llama 2 [INST]); else a message naming both.
std::string chat_template_mismatch(const Tokenizer& tokenizer, const std::string& chat_template);

// The tokens that end a reply besides EOS: <|eot_id|> in a Llama 3 vocabulary.
std::vector<int32_t> chat_stop_tokens(const Tokenizer& tokenizer);

}  // namespace lathe
