// Llama tokenizers from a Hugging Face model folder: SentencePiece-style BPE with byte
// fallback (Llama 2, tinyllamas) and byte-level BPE (Llama 3), from tokenizer.json or
// tokenizer.model, with the special tokens and BOS/EOS policy of tokenizer_config.json.
// Ids equal those of HF `tokenizers` on tokenizer.json, of sentencepiece on a SentencePiece
// tokenizer.model and of tiktoken on a Llama 3 tokenizer.model.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/model.h"

namespace lathe {

class Tokenizer {
 public:
  // From an HF model folder: tokenizer.json if present, else tokenizer.model (SentencePiece
  // protobuf or tiktoken ranks); then tokenizer_config.json (add_bos_token, add_eos_token,
  // bos/eos/pad/unk tokens, added_tokens_decoder) and special_tokens_map.json when present.
  // Errors name the file and what is wrong.
  static std::unique_ptr<Tokenizer> load(const std::string& folder);
  explicit Tokenizer(tok::Model model);

  // add_special: BOS / EOS as the tokenizer's config says (HF's default). Added tokens
  // written literally in the text ("<|eot_id|>", "<s>") become those tokens, as HF's
  // tokenizer(text) does.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
  // Appends to `out`: the form for the data pipeline, which reuses one vector.
  void encode_into(std::string_view text, bool add_special, std::vector<int32_t>& out) const;
  // HF decode semantics: SentencePiece "▁" -> " " with the prepended space removed, <0xNN>
  // runs reassembled (invalid UTF-8 -> U+FFFD per byte); byte-level bytes reassembled
  // (invalid UTF-8 -> U+FFFD). No clean_up_tokenization_spaces: decode(encode(x)) == x.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The token as HF's convert_ids_to_tokens writes it ("▁the", "Ġthe", "<0x0A>", "<s>").
  std::string piece(int32_t id) const;
  // The bytes the token adds to decoded text: "▁the" -> " the", <0xE4> -> one byte 0xE4,
  // a byte-level token's raw bytes, an added token's content. May be part of a UTF-8
  // character (what OpenAI's logprobs call a token's "bytes").
  const std::string& token_bytes(int32_t id) const;
  // Exact token string (as piece() writes it, or an added token's content) -> id.
  std::optional<int32_t> find(std::string_view token) const;
  bool is_special(int32_t id) const;

  int32_t vocab_size() const { return int32_t(tokens_.size()); }
  int32_t bos_id() const { return bos_id_; }  // -1 if none
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  bool adds_bos() const { return add_bos_; }
  bool adds_eos() const { return add_eos_; }
  bool byte_level() const { return m_.kind == tok::Kind::kByteLevel; }
  // additional_special_tokens of tokenizer_config.json / special_tokens_map.json (and those
  // add_special_tokens added), in order.
  const std::vector<std::string>& additional_special_tokens() const { return additional_special_; }
  // What the loader read (vocabulary, merges, added tokens, options), e.g. for a GGUF export.
  const tok::Model& model() const { return m_; }

  // Appends new special tokens (ids vocab_size(), vocab_size()+1, ...); tokens that already
  // exist keep their id (a plain vocabulary token becomes special, as in HF). Returns the
  // id of each requested token, in order.
  std::vector<int32_t> add_special_tokens(const std::vector<std::string>& tokens);
  // Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `folder`
  // (created if needed) so that transformers' AutoTokenizer loads the same tokenizer.
  void save(const std::string& folder) const;

 private:
  struct Scratch;
  void rebuild_added();
  void compute_whole_ok();
  void encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& out,
                      Scratch& s) const;
  void encode_spm(std::string_view text, bool at_start, std::vector<int32_t>& out,
                  Scratch& s) const;
  void encode_byte_level(std::string_view text, std::vector<int32_t>& out, Scratch& s) const;
  // Merges a word of initial symbols (from its text) and appends the result to out.
  void encode_word(std::string_view word, std::vector<int32_t>& out, Scratch& s) const;
  void append_symbols(std::string_view word, std::vector<int32_t>& out) const;
  void apply_config(const std::string& config_json, const std::string& config_path,
                    const std::string& map_json, const std::string& map_path);

  tok::Model m_;
  std::vector<std::string> tokens_;     // id -> piece() text, model and added tokens
  std::vector<std::string> decoded_;    // id -> bytes it decodes to
  std::vector<int16_t> byte_value_;     // id -> byte of a <0xNN> token, else -1
  std::vector<uint8_t> special_;        // id -> 1 if a special added token
  std::vector<uint8_t> whole_ok_;       // id -> merges rebuild this token whole
  std::array<int32_t, 256> byte_ids_;   // byte -> token (byte fallback / byte-level)
  std::array<int32_t, 128> ascii_ids_;  // ASCII character -> token, SentencePiece
  int32_t space_id_ = -1;               // "▁"
  bool split_words_ = false;            // no token spans "x▁": BPE word by word
  // Added tokens, longest first within each first byte, for literal matching.
  std::unordered_map<std::string, int32_t> added_ids_;
  std::vector<int32_t> added_order_;
  std::array<uint32_t, 257> added_first_{};  // first byte -> range in added_order_
  int added_lead_ = -1;                      // the first byte of every added token, if one
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
  bool add_bos_ = false, add_eos_ = false;
  std::string config_json_;  // tokenizer_config.json as read (re-written by save)
  std::string special_map_json_;
  std::vector<std::string> additional_special_;
};

}  // namespace lathe
