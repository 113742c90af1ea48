// Dataset formats and prompt templates: rows from jsonl / json / csv / plain text files are
// rendered through a named template into prompt and response text, tokenized, and returned
// as TokenRows whose labels carry the loss only where it belongs (the response, by default).
// The formats, templates and their exact strings are documented in docs/data.md.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "data/input_ids_source.h"

namespace lathe {

// What the formats need from a tokenizer. An interface rather than the Tokenizer itself so
// the data layer is tested with a tiny deterministic encoder and never needs a real vocabulary.
// encode() is called from several threads at once and must be safe to do so.
struct TextEncoder {
  virtual ~TextEncoder() = default;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;  // no BOS/EOS
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  // The id of a special token such as "<|start_header_id|>", if the vocabulary has it.
  virtual std::optional<int32_t> special(std::string_view token) const = 0;
  // Whether the tokenizer puts BOS before a sequence (tokenizer_config "add_bos_token");
  // prompt/response rows then start with BOS, as the tokenizer's own encode would.
  virtual bool adds_bos() const = 0;
};

class Tokenizer;
// Adapts lathe::Tokenizer (src/tokenizer/tokenizer.h); defined in tokenizer_encoder.cpp.
// The adapter borrows `tokenizer`, which must outlive it.
std::unique_ptr<TextEncoder> make_tokenizer_encoder(const Tokenizer& tokenizer);

// The `data` section of a config, for one dataset file (train or eval).
struct DataSpec {
  std::string format = "input_ids";  // see data_formats()
  std::string path;
  int64_t seq_len = 0;                // rows longer than this are truncated or dropped (too_long)
  int64_t vocab_size = 0;             // format input_ids only: ids must lie in [0, vocab_size)
  bool train_on_prompt = false;       // true: loss on every token, prompt included
  std::string on_bad_row = "error";   // "error": stop at the first bad row; "skip": count it
  std::string too_long = "truncate";  // "truncate": keep the first seq_len tokens; "drop"
  // format "template": prompt_template over {field} names, and the response as either one
  // field (response_field) or a second template (response_template).
  std::string prompt_template, response_field, response_template;
  // Template field name -> column of the file, e.g. {"question": "query"}; any text format.
  std::map<std::string, std::string> field_map;
};

struct DataStats {
  int64_t rows = 0;         // rows returned
  int64_t tokens = 0;       // input_ids over all returned rows
  int64_t targets = 0;      // positions t >= 1 whose label counts towards the loss
  int64_t skipped_bad = 0;  // on_bad_row=skip: malformed rows left out
  int64_t truncated = 0;    // too_long=truncate: rows cut to seq_len
  int64_t dropped = 0;      // too long and dropped (or left without any target by truncation)
  std::string first_bad;    // the message of the first skipped row, for the log
};

// The format names load_dataset accepts.
const std::vector<std::string>& data_formats();

// Checks a spec before any file is read; messages name the config key (data.format, ...).
void validate_data_spec(const DataSpec& spec);

// Reads, renders and tokenizes spec.path. `encoder` may be null only for format input_ids.
// Rows are tokenized on all OpenMP threads; the output keeps file order. Throws lathe::Error
// naming file:line (and column or byte offset where one exists) for a bad row unless
// on_bad_row=skip, and for a dataset with no usable rows. `stats` may be null.
std::vector<TokenRow> load_dataset(const DataSpec& spec, const TextEncoder* encoder,
                                   DataStats* stats);

// ---- The layers below load_dataset, exposed for tests and tools. ----

// One row of a file: its fields as a JSON object (CSV and text values are strings), the
// 1-based line where it starts, and, for a row that could not be read, why (with file:line).
struct Row {
  int64_t line = 0;
  nlohmann::json fields;
  std::string error;
};

// Reads every row of `path`; the file type comes from the extension (.jsonl, .json, .csv;
// anything else is plain text, accepted only for format "text"). Problems confined to one
// row are returned in Row::error; problems with the whole file throw.
std::vector<Row> read_rows(const std::string& path, std::string_view format);

// The offset of the first byte that is not part of valid UTF-8 (overlong forms, surrogates
// and code points above U+10FFFF are invalid), or npos.
size_t find_invalid_utf8(std::string_view text);

// A row rendered by its template: text pieces encoded one by one and concatenated, and
// special tokens inserted by id. Encoding the prompt on its own keeps training tokens equal
// to what the prompt alone encodes to at inference (as llama-recipes' samsum and chat data do).
struct Segment {
  std::string text;    // for a special token, its name (for display only)
  int32_t token = -1;  // >= 0: a special token id, inserted as is
  bool loss = false;   // part of the response: carries labels
};
struct Example {
  std::vector<Segment> segments;
  bool wrap = true;  // add BOS (if the tokenizer adds one) before and a trained EOS after
};

// Renders one row (which must have no error) with spec's template. Throws lathe::Error with
// path:line for a missing or mistyped field; `path` is only used in messages.
Example render_row(const DataSpec& spec, const Row& row, const TextEncoder& encoder,
                   const std::string& path);

// The concatenated text of an example (special tokens by name), as the templates document it.
std::string example_text(const Example& example);

// Token ids and labels of an example: labels are -100 outside loss segments unless
// train_on_prompt; all-trained rows get empty labels (= input_ids).
TokenRow tokenize_example(const Example& example, const TextEncoder& encoder, bool train_on_prompt);

}  // namespace lathe
