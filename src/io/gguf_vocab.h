// The tokenizer.* metadata of a GGUF file, from an HF model folder's tokenizer files, as
// llama.cpp's convert_hf_to_gguf.py writes it for a Llama:
// - a SentencePiece tokenizer.model: tokenizer.ggml.model "llama", the pieces with their
//   own scores and types, added tokens (added_tokens.json, tokenizer_config.json's
//   added_tokens_decoder) as user-defined or control tokens, "[PAD<i>]" up to vocab_size;
// - a SentencePiece-style tokenizer.json (byte fallback, "▁"): "llama", types byte / control
//   / normal as transformers' LlamaTokenizerFast reports them;
// - a byte-level tokenizer.json (Llama 3): "gpt2" with tokenizer.ggml.pre "llama-bpe", the
//   tokens, types and merges;
// then, for all, the special token ids, add_bos_token / add_eos_token and
// tokenizer.chat_template by the rules of gguf-py's SpecialVocab.
#pragma once
#include <cstdint>
#include <string>

namespace lathe {

class GgufWriter;

// Adds the tokenizer keys; vocab_size is config.json's (the rows of the embedding), which
// the token list is padded to. Returns a one-line description for the export's report.
std::string add_gguf_vocab(GgufWriter& w, const std::string& folder, int64_t vocab_size);

}  // namespace lathe
