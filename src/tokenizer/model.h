// What the loaders read from tokenizer.json or tokenizer.model: the vocabulary, the
// merge table and the text-processing options, in one plain struct that Tokenizer runs.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/text.h"

namespace lathe::tok {

// SentencePiece-style BPE (Llama 2: "▁" for spaces, <0xNN> byte fallback) or byte-level
// BPE (Llama 3: GPT-2 byte alphabet, regex pre-tokenizer).
enum class Kind : uint8_t { kSentencePiece, kByteLevel };

// Where "▁" is prepended to a text segment: HF's Prepend normalizer and SentencePiece's
// add_dummy_prefix do it always; Metaspace's prepend_scheme can say "first" (only the
// segment at the start of the input) or "never".
enum class Prepend : uint8_t { kNever, kAlways, kFirst };

// An added (usually special) token. lathe matches every added token literally in the raw
// text, leftmost-longest, before any normalization (HF does so for normalized=false, the
// flag of all Llama specials); lstrip/rstrip absorb adjacent ASCII whitespace;
// single_word is kept for save() but not applied.
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

struct Merge {
  int32_t left, right, merged, rank;
};

struct Model {
  Kind kind = Kind::kSentencePiece;
  std::string source;  // the file it was read from, for messages

  // Model vocabulary (ids 0..pieces.size()-1), as HF writes the tokens ("▁the", "Ġthe").
  std::vector<std::string> pieces;
  // The same tokens as the bytes they match in normalized text: SentencePiece pieces as
  // is, byte-level tokens decoded to raw bytes. Keys of `ids`.
  std::vector<std::string> texts;
  PieceMap ids;
  PairTable pairs;
  std::vector<Merge> merges;  // rank order; what save() writes as the merge list

  // SentencePiece-style options.
  Prepend prepend = Prepend::kAlways;
  // Metaspace does not prepend to a segment that already starts with "▁" (after spaces
  // became "▁"); the Prepend normalizer and SentencePiece always do.
  bool prepend_unless_leading_space = false;
  bool metaspace_split = false;           // Metaspace split=true: BPE per "▁word"
  bool remove_extra_whitespaces = false;  // SentencePiece normalizer option
  bool byte_fallback = false;
  bool fuse_unk = false;
  std::string unk_token;  // model.unk_token; empty if none
  // The decoder strips the one leading space the prepended "▁" became (HF Strip or
  // Metaspace decoder; SentencePiece with add_dummy_prefix).
  bool decode_strip_space = true;

  // Byte-level options.
  SplitRegex regex = SplitRegex::kLlama3;
  int max_digits = 3;
  bool add_prefix_space = false;
  // A pre-token that is itself in the vocabulary is one token (tiktoken always; HF when
  // model.ignore_merges). Otherwise lathe still looks it up, but only trusts tokens that
  // the merges rebuild whole, so the result equals merge-only BPE.
  bool ignore_merges = false;

  std::vector<AddedToken> added;

  // BOS/EOS the file itself adds: tokenizer.json's post_processor decides (a
  // TemplateProcessing names them; ByteLevel or null adds none). A tokenizer.model
  // leaves it to the defaults and tokenizer_config.json.
  bool has_template = false;
  std::string template_bos, template_eos;
  // Token names a tokenizer.model implies (SentencePiece trainer spec, Llama 3 defaults).
  std::string bos_token, eos_token, pad_token;

  // A SentencePiece tokenizer.model's own score and type of each piece (1 normal, 2 unknown,
  // 3 control, 4 user-defined, 5 unused, 6 byte), which a GGUF vocabulary carries; empty for
  // other files.
  std::vector<float> sp_scores;
  std::vector<uint8_t> sp_types;

  // tokenizer.json sections written back unchanged by save() (JSON text; empty = null).
  std::string normalizer_json, pre_tokenizer_json, post_processor_json, decoder_json;
};

// tokenizer.json (HF `tokenizers` format).
Model load_hf_tokenizer_json(const std::string& path);
// tokenizer.model: a SentencePiece ModelProto, or tiktoken "base64 rank" lines.
Model load_tokenizer_model(const std::string& path);
// The same from the file's bytes; `path` only names the source in messages (fuzz/ uses
// these to parse without a file).
Model parse_hf_tokenizer_json(std::string_view text, const std::string& path);
Model parse_tokenizer_model(const std::string& data, const std::string& path);
// Writes `m` as tokenizer.json text (m.added is the complete added-token list);
// post_processor_json replaces m.post_processor_json.
std::string hf_tokenizer_json_text(const Model& m, const std::string& post_processor_json);

// Meta's Llama 3 special tokens (ids 128000..128255 after the 128000 ranks), used when a
// tiktoken tokenizer.model comes without tokenizer_config.json.
std::vector<std::string> llama3_default_special_tokens();

}  // namespace lathe::tok
