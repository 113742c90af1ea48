// Chat prompts equal the model family's own format: Meta's Llama 2 chat_completion and the
// Llama 3 chat template with add_generation_prompt, written out literally here.
#include "generate/chat_prompt.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/tokenizer_test_util.h"

namespace lathe {
namespace {

std::vector<int32_t> cat(std::vector<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(ChatPrompt, Llama2InstFormat) {
  LATHE_TOKENIZER_OR_SKIP(tok, "llama2-model");
  const int32_t bos = tok->bos_id(), eos = tok->eos_id();
  auto enc = [&](const std::string& s) { return tok->encode(s, false); };
  // Meta's llama/generation.py: the system prompt folded into the first user turn; each
  // earlier exchange "<s>[INST] u [/INST] a </s>"; the last turn "<s>[INST] u [/INST]".
  const std::vector<int32_t> got = chat_prompt_ids(*tok, {{"system", "You are terse."},
                                                          {"user", "Hi there"},
                                                          {"assistant", " Hello! "},
                                                          {"user", "Bye"}});
  const std::vector<int32_t> want =
      cat({{bos},
           enc("[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello! "),
           {eos, bos},
           enc("[INST] Bye [/INST]")});
  EXPECT_EQ(got, want);
  EXPECT_EQ(chat_stop_tokens(*tok), std::vector<int32_t>{});
}

TEST(ChatPrompt, Llama3HeaderFormat) {
  LATHE_TOKENIZER_OR_SKIP(tok, "llama3-json");
  // Added tokens written in the text encode to themselves, so the template can be spelled.
  const std::vector<int32_t> got =
      chat_prompt_ids(*tok, {{"system", "You are terse."}, {"user", "Hi there"}});
  const std::vector<int32_t> want = tok->encode(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
      false);
  EXPECT_EQ(got, want);
  EXPECT_EQ(chat_stop_tokens(*tok), std::vector<int32_t>{*tok->find("<|eot_id|>")});
}

TEST(ChatPrompt, MustEndWithAUserTurn) {
  LATHE_TOKENIZER_OR_SKIP(tok, "llama2-model");
  EXPECT_THROW(chat_prompt_ids(*tok, {{"user", "a"}, {"assistant", "b"}}), Error);
  EXPECT_THROW(chat_prompt_ids(*tok, {}), Error);
}

}  // namespace
}  // namespace lathe
