// Prompt templates: how a row's fields become prompt and response text (or, for chat, a
// sequence of text pieces and special tokens), and how those become token ids and labels.
// Every template string lives in the table at the top; docs/data.md documents the same table.
#include "data/formats.h"

#include <algorithm>

#include "core/error.h"

namespace lathe {
namespace {

using Json = nlohmann::json;

// ---- The templates. {name} is a row field (renamed by data.field_map), {{ and }} are braces.

struct TemplateDef {
  std::string_view name, prompt, response;
  std::string_view prompt_no_input;  // alpaca: used when "input" is missing or empty
};

// alpaca: Stanford Alpaca's train.py PROMPT_DICT, also llama-recipes' alpaca_dataset.py; the
// prompt ends at "### Response:" and the output follows directly, as there.
// samsum: llama-recipes' samsum_dataset.py. gsm8k and pubmedqa: the question/answer layout
// of the Ray/KubeRay fine-tuning recipes. text: no prompt, loss on the whole document.
constexpr TemplateDef kTemplates[] = {
    {"alpaca",
     "Below is an instruction that describes a task, paired with an input that provides further "
     "context. Write a response that appropriately completes the request.\n\n"
     "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:",
     "{output}",
     "Below is an instruction that describes a task. Write a response that appropriately "
     "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:"},
    {"samsum", "Summarize this dialog:\n{dialogue}\n---\nSummary:\n", "{summary}", ""},
    {"pubmedqa", "Question: {question}\nContext: {context}\nAnswer: ", "{answer}", ""},
    {"gsm8k", "Question: {question}\nAnswer: ", "{answer}", ""},
    {"text", "", "{text}", ""},
};

// PubMedQA's ori_pqal.json rows become {question, context, answer}: the contexts (abstract
// sections) joined by newlines, and the answer the decision first, then the long answer, so
// a generated answer's first word is the yes/no/maybe label that PubMedQA is scored on.
constexpr std::string_view kPubmedContextJoin = "\n";
constexpr std::string_view kPubmedAnswer = "{final_decision}. {LONG_ANSWER}";

// Llama 2 chat, as Meta's chat_completion and the HF chat template: every user turn is
// <s>[INST] {user} [/INST], every reply " {assistant} </s>"; the system prompt is folded into
// the first user turn. The reply is encoded without its leading space because SentencePiece
// (Llama 2's tokenizer) prefixes every encoded piece with one.
constexpr std::string_view kLlama2Bos = "<s>", kLlama2Eos = "</s>";
constexpr std::string_view kLlama2InstOpen = "[INST] ", kLlama2InstClose = " [/INST]";
constexpr std::string_view kLlama2SysOpen = "<<SYS>>\n", kLlama2SysClose = "\n<</SYS>>\n\n";
constexpr std::string_view kLlama2ReplyEnd = " ";

// Llama 3 chat, as its HF chat template: <|begin_of_text|>, then per message
// <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>.
constexpr std::string_view kLlama3Begin = "<|begin_of_text|>";
constexpr std::string_view kLlama3HeaderStart = "<|start_header_id|>";
constexpr std::string_view kLlama3HeaderEnd = "<|end_header_id|>";
constexpr std::string_view kLlama3AfterHeader = "\n\n";
constexpr std::string_view kLlama3Eot = "<|eot_id|>";

const TemplateDef* find_template(std::string_view name) {
  for (const TemplateDef& t : kTemplates)
    if (t.name == name) return &t;
  return nullptr;
}

// A template as written in messages: newlines and quotes escaped, on one line.
std::string shown(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '"' || c == '\\')
      out += {'\\', c};
    else
      out += c;
  }
  return out + "\"";
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// ---- The pieces a template is made of.

class FieldTemplate;

// A row's fields as a template sees them: through data.field_map, with messages naming file
// and line.
struct Fields {
  const Row& row;
  const std::map<std::string, std::string>* map;  // null: names are the file's columns
  const std::string& path;

  std::string column(std::string_view name) const;  // the file's name for template field `name`
  const Json* find(std::string_view name) const;    // null when missing or JSON null
  std::string describe(std::string_view name) const;
  // The field as text (numbers and booleans as JSON writes them), or nullopt when missing.
  std::optional<std::string> text(std::string_view name, const FieldTemplate& user) const;
  std::string require(std::string_view name, const FieldTemplate& user) const;
};

// "Q: {question}\nA: " parsed once into literal text and field names.
class FieldTemplate {
 public:
  // `owner` names the template in messages (a config key or a built-in's name); a malformed
  // template throws here, before any row is read.
  FieldTemplate(std::string_view text, std::string owner);
  static FieldTemplate single(std::string field, std::string owner);  // just "{field}"
  std::string render(const Fields& fields) const;
  std::string used_by() const;  // owner and text, for messages

 private:
  struct Part {
    std::string text;  // literal text, or the field name
    bool field;
  };
  std::string text_, owner_;
  std::vector<Part> parts_;
};

// Turns rows into Examples for one DataSpec; built once per dataset and shared by threads.
class Renderer {
 public:
  Renderer(const DataSpec& spec, const TextEncoder& encoder);
  Example render(const Row& row, const std::string& path) const;

 private:
  Example render_pubmed_ori(const Fields& fields) const;
  Example render_chat(const Fields& fields) const;

  const DataSpec& spec_;
  const TextEncoder& encoder_;
  std::optional<FieldTemplate> prompt_, prompt_no_input_, response_, pubmed_answer_;
  bool llama3_ = false;  // chat: Llama 3 headers, else Llama 2 [INST]
  int32_t begin_ = -1, header_start_ = -1, header_end_ = -1, eot_ = -1;
};

// ---- Field templates.

FieldTemplate::FieldTemplate(std::string_view text, std::string owner)
    : text_(text), owner_(std::move(owner)) {
  std::string literal;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      literal += c;  // {{ or }}
      ++i;
    } else if (c == '{') {
      size_t close = text.find_first_of("{}", i + 1);
      if (close == std::string_view::npos || text[close] != '}')
        fail(owner_, ": unmatched '{' at character ", i + 1, " of ", shown(text),
             "; write {{ for a literal brace");
      if (close == i + 1) fail(owner_, ": empty field name \"{}\" in ", shown(text));
      if (!literal.empty()) parts_.push_back({std::move(literal), false});
      literal.clear();
      parts_.push_back({std::string(text.substr(i + 1, close - i - 1)), true});
      i = close;
    } else if (c == '}') {
      fail(owner_, ": unmatched '}' at character ", i + 1, " of ", shown(text),
           "; write }} for a literal brace");
    } else {
      literal += c;
    }
  }
  if (!literal.empty()) parts_.push_back({std::move(literal), false});
}

FieldTemplate FieldTemplate::single(std::string field, std::string owner) {
  FieldTemplate t("", std::move(owner));
  t.text_ = "{" + field + "}";
  t.parts_.push_back({std::move(field), true});
  return t;
}

std::string FieldTemplate::used_by() const { return str_cat(owner_, " ", shown(text_)); }

std::string FieldTemplate::render(const Fields& fields) const {
  std::string out;
  for (const Part& part : parts_) out += part.field ? fields.require(part.text, *this) : part.text;
  return out;
}

std::string Fields::column(std::string_view name) const {
  if (map)
    if (auto it = map->find(std::string(name)); it != map->end()) return it->second;
  return std::string(name);
}

const Json* Fields::find(std::string_view name) const {
  auto f = row.fields.find(column(name));
  return f == row.fields.end() || f->is_null() ? nullptr : &*f;
}

std::string Fields::describe(std::string_view name) const {
  std::string col = column(name);
  if (col != name)
    return str_cat("\"", col, "\" (template field \"", name, "\" via data.field_map)");
  return str_cat("\"", name, "\"");
}

std::optional<std::string> Fields::text(std::string_view name, const FieldTemplate& user) const {
  const Json* v = find(name);
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number() || v->is_boolean()) return v->dump();
  fail(path, ":", row.line, ": field ", describe(name), " is ", v->type_name(),
       ", expected text; it is used by ", user.used_by());
}

std::string Fields::require(std::string_view name, const FieldTemplate& user) const {
  if (auto v = text(name, user)) return *std::move(v);
  std::string have;
  for (auto it = row.fields.begin(); it != row.fields.end(); ++it)
    have += (have.empty() ? "" : ", ") + it.key();
  fail(path, ":", row.line, ": missing field ", describe(name), " needed by ", user.used_by(),
       "; the row has: ", have.empty() ? "no fields" : have);
}

// ---- Rendering rows.

Renderer::Renderer(const DataSpec& spec, const TextEncoder& encoder)
    : spec_(spec), encoder_(encoder) {
  const std::string& f = spec.format;
  // Every format ends a response with EOS (Llama 2 chat: </s>); the first is checked here so
  // a tokenizer without one fails once, not on every row.
  LATHE_CHECK(encoder.eos_id() >= 0, "data.format=", f,
              ": the tokenizer has no EOS token to end responses with");
  if (f == "template") {
    prompt_.emplace(spec.prompt_template, "data.prompt_template");
    if (!spec.response_template.empty())
      response_.emplace(spec.response_template, "data.response_template");
    else
      response_.emplace(FieldTemplate::single(spec.response_field, "data.response_field"));
  } else if (const TemplateDef* t = find_template(f)) {
    prompt_.emplace(t->prompt, str_cat("the ", f, " prompt template"));
    response_.emplace(t->response, str_cat("the ", f, " response template"));
    if (!t->prompt_no_input.empty())
      prompt_no_input_.emplace(t->prompt_no_input, str_cat("the ", f, " prompt template"));
    if (f == "pubmedqa")
      pubmed_answer_.emplace(kPubmedAnswer, "the pubmedqa answer for ori_pqal.json rows");
  } else if (f == "chat") {
    // Llama 3 vocabularies have the header tokens; Llama 2's has none of them.
    auto header = encoder.special(kLlama3HeaderStart);
    llama3_ = header.has_value();
    if (llama3_) {
      auto need = [&](std::string_view name) {
        auto id = encoder.special(name);
        if (!id)
          fail("data.format=chat: the tokenizer has ", kLlama3HeaderStart, " but not ", name,
               "; a Llama 3 vocabulary has both");
        return *id;
      };
      header_start_ = *header;
      header_end_ = need(kLlama3HeaderEnd);
      eot_ = need(kLlama3Eot);
      begin_ = encoder.special(kLlama3Begin).value_or(encoder.bos_id());
    } else {
      LATHE_CHECK(encoder.bos_id() >= 0,
                  "data.format=chat: the Llama 2 chat format starts "
                  "every user turn with BOS (<s>), and the tokenizer has none");
    }
    LATHE_CHECK(begin_ >= 0 || !llama3_, "data.format=chat: the tokenizer has neither ",
                kLlama3Begin, " nor a BOS token");
  } else {
    fail("data.format: \"", f, "\" has no template");
  }
}

Example Renderer::render(const Row& row, const std::string& path) const {
  LATHE_ASSERT(row.error.empty());
  const Fields fields{row, &spec_.field_map, path};
  if (spec_.format == "chat") return render_chat(fields);
  if (spec_.format == "pubmedqa" && !fields.find("question") && row.fields.contains("QUESTION"))
    return render_pubmed_ori(fields);
  const FieldTemplate* prompt = &*prompt_;
  if (prompt_no_input_) {
    auto input = fields.text("input", *prompt_);
    if (!input || input->empty()) prompt = &*prompt_no_input_;
  }
  Example ex;
  ex.segments.push_back({prompt->render(fields), -1, false});
  ex.segments.push_back({response_->render(fields), -1, true});
  return ex;
}

Example Renderer::render_pubmed_ori(const Fields& fields) const {
  const Row& row = fields.row;
  const FieldTemplate layout("{QUESTION} {CONTEXTS} {LONG_ANSWER} {final_decision}",
                             "the pubmedqa template (ori_pqal.json layout)");
  const Fields raw{row, nullptr, fields.path};  // ori_pqal.json keys are fixed; no field_map
  std::string context;
  const Json* contexts = raw.find("CONTEXTS");
  if (contexts && contexts->is_array()) {
    for (size_t i = 0; i < contexts->size(); ++i) {
      const Json& c = (*contexts)[i];
      if (!c.is_string())
        fail(fields.path, ":", row.line, ": CONTEXTS[", i, "] is ", c.type_name(),
             ", expected text (PubMedQA ori_pqal.json layout)");
      context += (i ? std::string(kPubmedContextJoin) : "") + c.get<std::string>();
    }
  } else {
    context = raw.require("CONTEXTS", layout);
  }
  Row flat;
  flat.line = row.line;
  flat.fields = {{"question", raw.require("QUESTION", layout)},
                 {"context", std::move(context)},
                 {"LONG_ANSWER", raw.require("LONG_ANSWER", layout)},
                 {"final_decision", raw.require("final_decision", layout)}};
  const Fields ori{flat, nullptr, fields.path};
  flat.fields["answer"] = pubmed_answer_->render(ori);
  Example ex;
  ex.segments.push_back({prompt_->render(ori), -1, false});
  ex.segments.push_back({response_->render(ori), -1, true});
  return ex;
}

Example Renderer::render_chat(const Fields& fields) const {
  const Row& row = fields.row;
  const Json* messages = fields.find("messages");
  auto bad = [&](auto&&... parts) {
    fail(fields.path, ":", row.line, ": ", std::forward<decltype(parts)>(parts)...);
  };
  if (!messages)
    bad("missing field ", fields.describe("messages"),
        R"(; data.format=chat expects {"messages": [{"role": "user", "content": "..."}, ...]})");
  if (!messages->is_array() || messages->empty())
    bad("field ", fields.describe("messages"), " must be a non-empty array of messages, got ",
        messages->is_array() ? "an empty array" : messages->type_name());
  struct Message {
    std::string role, content;
  };
  std::vector<Message> msgs;
  bool any_reply = false;
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    auto get = [&](const char* key) {
      auto it = m.is_object() ? m.find(key) : m.end();
      if (!m.is_object() || it == m.end() || !it->is_string())
        bad("messages[", i, "] needs a string \"", key,
            R"(" (expected {"role": ..., "content": ...}))");
      return it->template get<std::string>();
    };
    Message msg{get("role"), get("content")};
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      bad("messages[", i, "] has role \"", msg.role, "\"; expected system, user or assistant");
    if (msg.role == "system" && i != 0)
      bad("messages[", i, "]: only the first message may be system");
    any_reply |= msg.role == "assistant";
    msgs.push_back(std::move(msg));
  }
  if (!any_reply) bad("the conversation has no assistant message, so nothing to train on");

  Example ex;
  ex.wrap = false;
  auto text = [&](std::string s, bool loss) { ex.segments.push_back({std::move(s), -1, loss}); };
  auto token = [&](std::string_view name, int32_t id, bool loss) {
    ex.segments.push_back({std::string(name), id, loss});
  };
  if (llama3_) {
    token(kLlama3Begin, begin_, false);
    for (const Message& m : msgs) {
      const bool reply = m.role == "assistant";
      token(kLlama3HeaderStart, header_start_, false);
      text(m.role, false);
      token(kLlama3HeaderEnd, header_end_, false);
      text(std::string(kLlama3AfterHeader), false);
      text(trim(m.content), reply);
      token(kLlama3Eot, eot_, reply);
    }
    return ex;
  }
  size_t first = msgs[0].role == "system" ? 1 : 0;
  for (size_t i = first; i < msgs.size(); ++i) {
    const Message& m = msgs[i];
    if ((m.role == "user") != ((i - first) % 2 == 0))
      bad("messages[", i, "] is ", m.role,
          "; the Llama 2 chat format needs roles to alternate user/assistant/user/... after an "
          "optional system message");
    if (m.role == "user") {
      std::string content = m.content;
      if (i == first && first == 1)
        content = str_cat(kLlama2SysOpen, msgs[0].content, kLlama2SysClose, content);
      token(kLlama2Bos, encoder_.bos_id(), false);
      text(str_cat(kLlama2InstOpen, trim(content), kLlama2InstClose), false);
    } else {
      text(str_cat(trim(m.content), kLlama2ReplyEnd), true);
      token(kLlama2Eos, encoder_.eos_id(), true);
    }
  }
  return ex;
}

}  // namespace

Example render_row(const DataSpec& spec, const Row& row, const TextEncoder& encoder,
                   const std::string& path) {
  return Renderer(spec, encoder).render(row, path);
}

std::string example_text(const Example& example) {
  std::string out;
  for (const Segment& s : example.segments) out += s.text;
  return out;
}

TokenRow tokenize_example(const Example& example, const TextEncoder& encoder,
                          bool train_on_prompt) {
  TokenRow row;
  std::vector<int32_t>& ids = row.input_ids;
  std::vector<int32_t> labels;
  auto add = [&](int32_t id, bool loss) {
    ids.push_back(id);
    labels.push_back(loss || train_on_prompt ? id : -100);
  };
  if (example.wrap && encoder.adds_bos() && encoder.bos_id() >= 0) add(encoder.bos_id(), false);
  for (const Segment& s : example.segments) {
    if (s.token >= 0) {
      add(s.token, s.loss);
    } else if (!s.text.empty()) {
      for (int32_t id : encoder.encode(s.text)) add(id, s.loss);
    }
  }
  if (example.wrap) add(encoder.eos_id(), true);  // the model learns to stop
  // Position 0 is never a target, so a row trained everywhere else needs no labels.
  bool all = std::all_of(labels.begin() + std::min<size_t>(1, labels.size()), labels.end(),
                         [](int32_t l) { return l != -100; });
  if (!all) row.labels = std::move(labels);
  return row;
}

// ---- Loading a dataset.

const std::vector<std::string>& data_formats() {
  static const std::vector<std::string> kFormats = {"alpaca",   "chat",   "gsm8k",    "input_ids",
                                                    "pubmedqa", "samsum", "template", "text"};
  return kFormats;
}

void validate_data_spec(const DataSpec& spec) {
  const auto& formats = data_formats();
  if (std::find(formats.begin(), formats.end(), spec.format) == formats.end()) {
    std::string list;
    for (const auto& f : formats) list += (list.empty() ? "" : ", ") + f;
    fail("data.format: unknown format \"", spec.format, "\"; expected one of: ", list);
  }
  LATHE_CHECK(!spec.path.empty(), "data.format=", spec.format, ": no data file given");
  LATHE_CHECK(spec.seq_len >= 2,
              "data.seq_len must be at least 2 (a row needs a token and a "
              "target), got ",
              spec.seq_len);
  LATHE_CHECK(spec.on_bad_row == "error" || spec.on_bad_row == "skip",
              "data.on_bad_row: expected \"error\" or \"skip\", got \"", spec.on_bad_row, "\"");
  LATHE_CHECK(spec.too_long == "truncate" || spec.too_long == "drop",
              "data.too_long: expected \"truncate\" or \"drop\", got \"", spec.too_long, "\"");
  const bool is_template = spec.format == "template";
  for (auto [key, value] : {std::pair{"prompt_template", &spec.prompt_template},
                            std::pair{"response_field", &spec.response_field},
                            std::pair{"response_template", &spec.response_template}})
    LATHE_CHECK(is_template || value->empty(), "data.", key,
                " is only used with data.format=template (data.format is ", spec.format, ")");
  if (is_template) {
    // An empty prompt is allowed: a response template over the whole row then trains on all
    // of it, as the Ray template's {"input": "<START_Q>...<END_A>"} rows want.
    LATHE_CHECK(spec.response_field.empty() != spec.response_template.empty(),
                "data.format=template needs exactly one of data.response_field (a field name) "
                "and data.response_template (a template such as \"{answer}\")");
    // Parse both now, so a typo fails before any file is read.
    FieldTemplate(spec.prompt_template, "data.prompt_template");
    FieldTemplate(spec.response_template, "data.response_template");
  }
  LATHE_CHECK(spec.format != "input_ids" || spec.field_map.empty(),
              "data.field_map does not apply to data.format=input_ids");
  for (const auto& [field, column] : spec.field_map)
    LATHE_CHECK(!field.empty() && !column.empty(), "data.field_map: empty name in \"", field,
                "\": \"", column, "\"");
}

namespace {

enum class Outcome : uint8_t { kKept, kTruncated, kDropped, kBad };

// Applies data.too_long. A row left without any target (position >= 1 with a label) would
// only add padding, so it is dropped even under truncate.
Outcome fit_length(TokenRow& row, const DataSpec& spec) {
  Outcome outcome = Outcome::kKept;
  const auto n = static_cast<size_t>(spec.seq_len);
  if (row.input_ids.size() > n) {
    if (spec.too_long == "drop") return Outcome::kDropped;
    row.input_ids.resize(n);
    if (!row.labels.empty()) row.labels.resize(n);
    outcome = Outcome::kTruncated;
  }
  if (row.input_ids.size() < 2) return Outcome::kDropped;
  if (!row.labels.empty() &&
      std::all_of(row.labels.begin() + 1, row.labels.end(), [](int32_t l) { return l == -100; }))
    return Outcome::kDropped;
  return outcome;
}

int64_t count_targets(const TokenRow& row) {
  if (row.labels.empty()) return static_cast<int64_t>(row.input_ids.size()) - 1;
  return std::count_if(row.labels.begin() + 1, row.labels.end(),
                       [](int32_t l) { return l != -100; });
}

}  // namespace

std::vector<TokenRow> load_dataset(const DataSpec& spec, const TextEncoder* encoder,
                                   DataStats* stats) {
  validate_data_spec(spec);
  DataStats local;
  DataStats& st = stats ? *stats : local;
  st = DataStats{};
  std::vector<TokenRow> rows;
  std::vector<Outcome> outcomes;
  std::vector<std::string> errors;
  if (spec.format == "input_ids") {
    LATHE_CHECK(spec.vocab_size > 0, "data.format=input_ids: the vocabulary size is unknown");
    // The pre-tokenized reader checks every id strictly and stops at the first bad row.
    LATHE_CHECK(spec.on_bad_row == "error",
                "data.on_bad_row=skip is not supported for "
                "data.format=input_ids; fix the row the error names");
    rows = read_input_ids_jsonl(spec.path, spec.vocab_size);
    outcomes.resize(rows.size());
    errors.resize(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) outcomes[i] = fit_length(rows[i], spec);
  } else {
    LATHE_CHECK(encoder, "data.format=", spec.format, " needs a tokenizer to encode text");
    const Renderer renderer(spec, *encoder);
    const std::vector<Row> raw = read_rows(spec.path, spec.format);
    const auto n = static_cast<int64_t>(raw.size());
    rows.resize(raw.size());
    outcomes.resize(raw.size());
    errors.resize(raw.size());
    // Each row is independent; results land at their row's index, so the order (and so the
    // training run) does not depend on the thread count. Exceptions must not leave an OpenMP
    // region, so each row's error is kept as text and reported in file order below.
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      try {
        if (!raw[i].error.empty()) {
          errors[i] = raw[i].error;
        } else {
          rows[i] =
              tokenize_example(renderer.render(raw[i], spec.path), *encoder, spec.train_on_prompt);
          outcomes[i] = fit_length(rows[i], spec);
        }
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
      if (!errors[i].empty()) outcomes[i] = Outcome::kBad;
    }
  }
  const size_t total = rows.size();
  size_t kept = 0;
  for (size_t i = 0; i < total; ++i) {
    switch (outcomes[i]) {
      case Outcome::kBad:
        if (spec.on_bad_row == "error")
          fail(errors[i], " (data.on_bad_row=skip would skip such rows)");
        if (st.skipped_bad++ == 0) st.first_bad = errors[i];
        continue;
      case Outcome::kDropped:
        ++st.dropped;
        continue;
      case Outcome::kTruncated:
        ++st.truncated;
        break;
      case Outcome::kKept:
        break;
    }
    st.tokens += static_cast<int64_t>(rows[i].input_ids.size());
    st.targets += count_targets(rows[i]);
    if (kept != i) rows[kept] = std::move(rows[i]);
    ++kept;
  }
  rows.resize(kept);
  st.rows = static_cast<int64_t>(kept);
  if (kept == 0) {
    if (st.skipped_bad > 0 && st.dropped == 0)
      fail(spec.path, ": all ", total, " rows are bad; the first: ", st.first_bad);
    fail(spec.path, ": no usable rows: ", st.dropped, " of ", total,
         " rows are longer than "
         "data.seq_len=",
         spec.seq_len, " (data.too_long=", spec.too_long,
         ") or have no "
         "response token left",
         st.skipped_bad ? str_cat(", ", st.skipped_bad, " are bad") : "");
  }
  return rows;
}

}  // namespace lathe
