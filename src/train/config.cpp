#include "train/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string_view>
#include <variant>

#include "core/error.h"

namespace lathe {
namespace {

// The allowed values of enum-like keys. Adding a data format means adding it here (and a
// reader for it); nothing else in this file needs to change.
// Must agree with data_formats() in data/formats.cpp (a test checks).
constexpr std::array<std::string_view, 8> kDataFormats = {
    "input_ids", "text", "alpaca", "samsum", "pubmedqa", "gsm8k", "chat", "template"};
constexpr std::array<std::string_view, 2> kBadRowPolicies = {"error", "skip"};
constexpr std::array<std::string_view, 2> kTooLongPolicies = {"truncate", "drop"};
constexpr std::array<std::string_view, 2> kPrecisions = {"fp32", "bf16"};
constexpr std::array<std::string_view, 3> kDevices = {"cpu", "cuda", "auto"};
constexpr std::array<std::string_view, 2> kPaddings = {"longest", "max_length"};
constexpr std::array<std::string_view, 4> kSchedules = {"constant", "linear", "cosine", "step"};
constexpr std::array<std::string_view, 3> kSaveDtypes = {"", "bf16", "fp32"};
// FSDP and DeepSpeed names for the same strategies are both accepted.
constexpr std::array<std::string_view, 9> kDistStrategies = {
    "no_shard", "ddp", "zero1", "shard_grad_op", "zero2", "full_shard", "zero3", "hybrid_shard",
    "hybrid"};
constexpr std::array<std::string_view, 3> kPeftMethods = {"none", "lora", "qlora"};
constexpr std::array<std::string_view, 4> kBaseDtypes = {"", "fp32", "bf16", "nf4"};

using StringMap = std::map<std::string, std::string>;
using Field = std::variant<std::string*, int64_t*, uint64_t*, double*, bool*, std::vector<double>*,
                           std::vector<std::string>*, StringMap*>;

// Returns "" when the value is acceptable, else what was expected ("must be > 0").
using Check = std::string (*)(Field);

struct KeyDef {
  std::string_view name;  // "train.lr"
  Field (*field)(Config&);
  std::string_view doc;
  std::span<const std::string_view> choices = {};  // empty: any value of the type
  Check check = nullptr;
};

template <auto Min>
std::string at_least(Field f) {
  return *std::get<decltype(Min)*>(f) >= Min ? "" : str_cat("must be >= ", Min);
}

template <auto Min>
std::string greater_than(Field f) {
  return *std::get<decltype(Min)*>(f) > Min ? "" : str_cat("must be > ", Min);
}

// The bounds of double keys: clang before 18 takes no floating-point template arguments.
std::string positive(Field f) { return *std::get<double*>(f) > 0 ? "" : "must be > 0"; }
std::string non_negative(Field f) { return *std::get<double*>(f) >= 0 ? "" : "must be >= 0"; }

std::string check_betas(Field f) {
  const auto& b = *std::get<std::vector<double>*>(f);
  bool ok =
      b.size() == 2 && std::all_of(b.begin(), b.end(), [](double x) { return x >= 0 && x < 1; });
  return ok ? "" : "must be two numbers [beta1, beta2], each in [0, 1)";
}

std::string check_dropout(Field f) {
  const double v = *std::get<double*>(f);
  return v >= 0 && v < 1 ? "" : "must be in [0, 1)";
}

std::string check_resume(Field f) {
  return std::get<std::string*>(f)->empty()
             ? "must be false, true, a step number or a checkpoint folder"
             : "";
}

std::string check_port(Field f) {
  const int64_t v = *std::get<int64_t*>(f);
  return v >= 0 && v <= 65535 ? "" : "must be a TCP port, 1-65535, or 0 (off)";
}

std::string check_profile_steps(Field f) {
  const auto& v = *std::get<std::vector<double>*>(f);
  if (v.empty()) return "";
  const bool ok = v.size() == 2 && v[0] >= 1 && v[1] >= v[0] && v[0] == std::floor(v[0]) &&
                  v[1] == std::floor(v[1]);
  return ok ? "" : "must be [] or two step numbers [first, last], 1 <= first <= last";
}

std::string check_split(Field f) {
  const double v = *std::get<double*>(f);
  return v >= 0 && v < 1 ? "" : "must be in [0, 1)";
}

// The key name comes from the member name itself, so the two cannot drift apart.
#define LATHE_KEY(section, member, ...)                                                          \
  KeyDef {                                                                                       \
    .name = #section "." #member, .field = [](Config& c) -> Field { return &c.section.member; }, \
    __VA_ARGS__                                                                                  \
  }

// Struct order: config_to_yaml prints in this order.
const KeyDef kKeys[] = {
    LATHE_KEY(model, path, .doc = "Hugging Face model folder"),
    LATHE_KEY(model, special_tokens, .doc = "json file {\"tokens\": [...]} of special tokens to add"),
    LATHE_KEY(data, train, .doc = "training rows (jsonl)"),
    LATHE_KEY(data, eval, .doc = "evaluation rows (jsonl), optional"),
    LATHE_KEY(data, format, .doc = "row format", .choices = kDataFormats),
    LATHE_KEY(data, seq_len, .doc = "maximum tokens per sequence", .check = at_least<int64_t{1}>),
    LATHE_KEY(data, shuffle, .doc = "shuffle rows each epoch"),
    LATHE_KEY(data, packing,
              .doc = "pack whole documents into seq_len rows; attention and positions restart per document"),
    LATHE_KEY(data, padding, .doc = "pad rows to the longest in the micro-batch or to seq_len",
              .choices = kPaddings),
    LATHE_KEY(data, train_on_prompt, .doc = "loss on prompt tokens too (default: response only)"),
    LATHE_KEY(data, on_bad_row, .doc = "a malformed row stops the run, or is skipped and counted",
              .choices = kBadRowPolicies),
    LATHE_KEY(data, too_long, .doc = "rows over seq_len are truncated or dropped (counted)",
              .choices = kTooLongPolicies),
    LATHE_KEY(data, prompt_template, .doc = "format template: prompt over {field} names"),
    LATHE_KEY(data, response_field, .doc = "format template: the field holding the response"),
    LATHE_KEY(data, response_template, .doc = "format template: response over {field} names"),
    LATHE_KEY(data, field_map,
              .doc = "rename row columns for the format, {field: column}, e.g. {text: input}"),
    LATHE_KEY(data, test_split,
              .doc = "without data.eval: hold out this share of data.train (seeded) for eval",
              .check = check_split),
    LATHE_KEY(data, cache_dir, .doc = "tokenized-data cache folder; \"\" = ~/.cache/lathe/datasets"),
    LATHE_KEY(train, device,
              .doc = "where to compute; auto = cuda if this build has it and a GPU is visible",
              .choices = kDevices),
    LATHE_KEY(train, precision, .doc = "training precision", .choices = kPrecisions),
    LATHE_KEY(train, batch_size, .doc = "micro-batch size per process",
              .check = at_least<int64_t{1}>),
    LATHE_KEY(train, grad_accum, .doc = "micro-batches per optimizer step",
              .check = at_least<int64_t{1}>),
    LATHE_KEY(train, max_steps, .doc = "optimizer steps; 0 = derived from epochs",
              .check = at_least<int64_t{0}>),
    LATHE_KEY(train, epochs, .doc = "passes over the training data", .check = positive),
    LATHE_KEY(train, lr, .doc = "peak learning rate", .check = positive),
    LATHE_KEY(train, weight_decay, .doc = "AdamW decoupled weight decay", .check = non_negative),
    LATHE_KEY(train, betas, .doc = "AdamW [beta1, beta2]", .check = check_betas),
    LATHE_KEY(train, eps, .doc = "AdamW epsilon", .check = positive),
    LATHE_KEY(train, schedule, .doc = "learning-rate schedule", .choices = kSchedules),
    LATHE_KEY(train, warmup_steps, .doc = "linear warmup steps", .check = at_least<int64_t{0}>),
    LATHE_KEY(train, gamma, .doc = "step schedule: lr *= gamma each epoch",
              .check = positive),
    LATHE_KEY(train, grad_clip, .doc = "max global gradient norm; 0 = off", .check = non_negative),
    LATHE_KEY(train, seed, .doc = "random seed"),
    LATHE_KEY(train, threads, .doc = "CPU threads; 0 = all cores", .check = at_least<int64_t{0}>),
    LATHE_KEY(train, activation_checkpointing, .doc = "recompute activations to save memory"),
    LATHE_KEY(train, memory_check,
              .doc = "before loading, refuse a run whose memory plan exceeds the memory "
                     "available (false: start anyway)"),
    LATHE_KEY(train, resume,
              .doc = "continue a run: true (newest checkpoint in output.dir), a step number, or "
                     "a checkpoint folder; false = a fresh run",
              .check = check_resume),
    LATHE_KEY(train, profile_steps,
              .doc = "[first, last]: record these steps as a Chrome trace, output.dir/trace.json "
                     "(Perfetto, chrome://tracing); [] = off",
              .check = check_profile_steps),
    LATHE_KEY(train, log_every, .doc = "log every N steps", .check = at_least<int64_t{1}>),
    LATHE_KEY(train, eval_every, .doc = "evaluate every N steps; 0 = at checkpoints and the end",
              .check = at_least<int64_t{0}>),
    LATHE_KEY(peft, method, .doc = "parameter-efficient fine-tuning: LoRA, or LoRA on a 4-bit NF4 base",
              .choices = kPeftMethods),
    LATHE_KEY(peft, r, .doc = "LoRA rank", .check = at_least<int64_t{1}>),
    LATHE_KEY(peft, alpha, .doc = "LoRA alpha; the update is scaled by alpha/r", .check = positive),
    LATHE_KEY(peft, dropout, .doc = "dropout on the LoRA input", .check = check_dropout),
    LATHE_KEY(peft, target_modules,
              .doc = "q_proj k_proj v_proj o_proj gate_proj up_proj down_proj, or all-linear"),
    LATHE_KEY(peft, base_dtype,
              .doc = "frozen base storage; \"\" = bf16 for lora (fp32 in fp32 runs), nf4 for qlora",
              .choices = kBaseDtypes),
    LATHE_KEY(peft, double_quant, .doc = "qlora: store the NF4 block scales in 8 bits too"),
    LATHE_KEY(peft, adapter, .doc = "PEFT adapter folder to start from (continue training it)"),
    LATHE_KEY(eval, metrics,
              .doc = "loss ppl rouge bleu exact_match gsm8k pubmedqa (generation metrics decode greedily)"),
    LATHE_KEY(eval, max_samples, .doc = "rows used for generation metrics; 0 = all",
              .check = at_least<int64_t{0}>),
    LATHE_KEY(eval, max_new_tokens, .doc = "generation metrics: tokens generated per row",
              .check = at_least<int64_t{1}>),
    LATHE_KEY(dist, strategy,
              .doc = "data parallel over processes: no_shard (DDP), zero1, shard_grad_op (ZeRO-2), "
                     "full_shard (ZeRO-3), hybrid_shard",
              .choices = kDistStrategies),
    LATHE_KEY(dist, shard_group_size,
              .doc = "hybrid_shard: processes per sharding group (replicated across groups); 0 = "
                     "processes per node",
              .check = at_least<int64_t{0}>),
    LATHE_KEY(dist, timeout, .doc = "seconds a collective may wait for the other processes",
              .check = positive),
    LATHE_KEY(dist, overlap,
              .doc = "send gradients (and, under full_shard, gather the next layer) on a "
                     "communication thread while the backward (forward) goes on"),
    LATHE_KEY(output, dir, .doc = "run folder: checkpoints, logs, final model"),
    LATHE_KEY(output, save_every, .doc = "checkpoint every N steps; 0 = only the final model",
              .check = at_least<int64_t{0}>),
    LATHE_KEY(output, keep_last, .doc = "checkpoints kept on disk", .check = at_least<int64_t{1}>),
    LATHE_KEY(output, keep_best,
              .doc = "keep the checkpoint with the best value of this eval metric (e.g. eval_loss, "
                     "exact_match); \"\" = off"),
    LATHE_KEY(output, save_dtype, .doc = "saved weights dtype; \"\" = training precision",
              .choices = kSaveDtypes),
    LATHE_KEY(output, tensorboard,
              .doc = "also write the metrics as TensorBoard event files in dir/tensorboard"),
    LATHE_KEY(output, dashboard,
              .doc = "serve the live dashboard of this run on 127.0.0.1:PORT from the training "
                     "process (lathe dashboard's page); 0 = off",
              .check = check_port),
    LATHE_KEY(output, overwrite,
              .doc = "a fresh run into a dir holding a run first deletes that run's files "
                     "(without it, the run refuses)"),
};

#undef LATHE_KEY

std::string_view section_of(std::string_view key) { return key.substr(0, key.find('.')); }

std::string_view leaf_of(std::string_view key) {
  size_t dot = key.rfind('.');
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

std::vector<std::string_view> sections() {
  std::vector<std::string_view> out;
  for (const KeyDef& k : kKeys)
    if (out.empty() || out.back() != section_of(k.name)) out.push_back(section_of(k.name));
  return out;
}

const KeyDef* find_key(std::string_view name) {
  for (const KeyDef& k : kKeys)
    if (k.name == name) return &k;
  return nullptr;
}

template <class List>
std::string join(const List& items) {
  std::string out;
  for (std::string_view s : items) {
    if (!out.empty()) out += ", ";
    out += s.empty() ? "\"\"" : s;
  }
  return out;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so "trian"
// is one edit from "train".
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// A suggestion far from what was typed is noise, so the allowed distance grows slowly with
// the length of the part that was typed wrong.
std::optional<std::string_view> closest(std::string_view bad, size_t typed_len,
                                        const std::vector<std::string_view>& candidates) {
  size_t limit = std::clamp<size_t>(typed_len / 3, 1, 3);
  std::optional<std::string_view> best;
  size_t best_dist = limit + 1;
  for (std::string_view c : candidates) {
    size_t dist = edit_distance(bad, c);
    if (dist < best_dist) best = c, best_dist = dist;
  }
  return best;
}

std::optional<std::string_view> suggest_key(std::string_view bad) {
  std::string_view leaf = leaf_of(bad);
  std::vector<std::string_view> names;
  // The right key name under the wrong section ("train.seq_len") is the likeliest mistake.
  for (const KeyDef& k : kKeys) {
    if (leaf_of(k.name) == leaf && k.name != bad) return k.name;
    names.push_back(k.name);
  }
  if (auto c = closest(bad, leaf.size(), names)) return c;
  std::vector<std::string_view> prefixed;
  for (const KeyDef& k : kKeys)
    if (leaf.size() >= 3 && leaf_of(k.name).starts_with(leaf)) prefixed.push_back(k.name);
  if (prefixed.size() == 1) return prefixed[0];
  return std::nullopt;
}

std::string unknown_key_message(std::string_view bad) {
  std::string msg = str_cat("unknown config key '", bad, "'");
  std::string_view section = section_of(bad);
  std::vector<std::string_view> leaves;
  for (const KeyDef& k : kKeys)
    if (section_of(k.name) == section) leaves.push_back(leaf_of(k.name));
  if (bad == section && !leaves.empty())
    return str_cat(msg, "; '", bad, "' is a section, its keys are ", bad,
                   ".<key> with <key> one of ", join(leaves));
  if (auto s = suggest_key(bad)) return str_cat(msg, "; did you mean '", *s, "'?");
  if (!leaves.empty()) return str_cat(msg, "; valid keys in '", section, "': ", join(leaves));
  return str_cat(msg, "; keys have the form section.key, sections: ", join(sections()));
}

std::string format_double(double v) {
  char buf[64];
  // Shortest text that parses back to the same double.
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general);
  return std::string(buf, res.ptr);
}

// Strict: the whole text must be the number, so "4x" or "1.5" for an integer key fail.
template <class T>
bool parse_number(std::string_view s, T& out) {
  if (s.starts_with('+')) s.remove_prefix(1);
  auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size() || s.empty()) return false;
  if constexpr (std::is_floating_point_v<T>) return std::isfinite(out);
  return true;
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::string describe(const YAML::Node& n) {
  if (n.IsScalar()) return str_cat("'", n.Scalar(), "'");
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;  // clang before 17 does not deduce aggregates

[[noreturn]] void type_error(const std::string& where, const KeyDef& key, std::string_view expected,
                             const std::string& got) {
  fail(where, ": config key '", key.name, "' expects ", expected, ", got ", got);
}

// Sets the key from a YAML node; `where` prefixes errors ("cfg.yaml:3" or "command line").
void assign(const KeyDef& key, Config& cfg, const YAML::Node& v, const std::string& where) {
  auto scalar = [&](std::string_view expected) -> std::string_view {
    if (!v.IsScalar()) type_error(where, key, expected, describe(v));
    return v.Scalar();
  };
  auto number = [&]<class T>(T* dst, std::string_view expected) {
    if (!parse_number(scalar(expected), *dst)) type_error(where, key, expected, describe(v));
  };
  std::visit(Overloaded{
                 [&](std::string* dst) {
                   // An empty value ("save_dtype:") means the empty string.
                   *dst = v.IsNull() ? "" : std::string(scalar("a string"));
                 },
                 [&](int64_t* dst) { number(dst, "an integer"); },
                 [&](uint64_t* dst) { number(dst, "a non-negative integer"); },
                 [&](double* dst) { number(dst, "a finite number"); },
                 [&](bool* dst) {
                   auto parsed = parse_bool(scalar("true or false"));
                   if (!parsed) type_error(where, key, "true or false", describe(v));
                   *dst = *parsed;
                 },
                 [&](std::vector<double>* dst) {
                   constexpr std::string_view expected = "a list of numbers such as [0.9, 0.95]";
                   if (!v.IsSequence()) type_error(where, key, expected, describe(v));
                   std::vector<double> out;
                   for (size_t i = 0; i < v.size(); ++i) {
                     double x = 0;
                     if (!v[i].IsScalar() || !parse_number(v[i].Scalar(), x))
                       type_error(where, key, expected, str_cat(describe(v[i]), " at index ", i));
                     out.push_back(x);
                   }
                   *dst = std::move(out);
                 },
                 [&](std::vector<std::string>* dst) {
                   // A single value stands for a one-element list: target_modules=all-linear.
                   if (v.IsScalar()) {
                     *dst = {v.Scalar()};
                     return;
                   }
                   constexpr std::string_view expected = "a list of names such as [q_proj, v_proj]";
                   if (!v.IsSequence()) type_error(where, key, expected, describe(v));
                   std::vector<std::string> out;
                   for (size_t i = 0; i < v.size(); ++i) {
                     if (!v[i].IsScalar())
                       type_error(where, key, expected, str_cat(describe(v[i]), " at index ", i));
                     out.push_back(v[i].Scalar());
                   }
                   *dst = std::move(out);
                 },
                 [&](StringMap* dst) {
                   constexpr std::string_view expected = "a mapping of names such as {text: input}";
                   if (v.IsNull()) return dst->clear();
                   if (!v.IsMap()) type_error(where, key, expected, describe(v));
                   StringMap out;
                   for (const auto& kv : v) {
                     if (!kv.second.IsScalar())
                       type_error(where, key, expected,
                                  str_cat(describe(kv.second), " for '", kv.first.Scalar(), "'"));
                     out[kv.first.Scalar()] = kv.second.Scalar();
                   }
                   *dst = std::move(out);
                 },
             },
             key.field(cfg));
}

std::string format_value(Field f) {
  return std::visit(Overloaded{
                        [](std::string* v) { return *v; },
                        [](int64_t* v) { return std::to_string(*v); },
                        [](uint64_t* v) { return std::to_string(*v); },
                        [](double* v) { return format_double(*v); },
                        [](bool* v) { return std::string(*v ? "true" : "false"); },
                        [](std::vector<double>* v) {
                          std::string out = "[";
                          for (size_t i = 0; i < v->size(); ++i)
                            out += (i ? ", " : "") + format_double((*v)[i]);
                          return out + "]";
                        },
                        [](std::vector<std::string>* v) {
                          std::string out = "[";
                          for (size_t i = 0; i < v->size(); ++i) out += (i ? ", " : "") + (*v)[i];
                          return out + "]";
                        },
                        [](StringMap* v) {
                          std::string out = "{";
                          for (const auto& [k, x] : *v)
                            out += (out.size() > 1 ? ", " : "") + k + ": " + x;
                          return out + "}";
                        },
                    },
                    f);
}

// Where each key was last set, so validation errors point at the file line or the command line.
using Origins = std::map<std::string_view, std::string>;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open config file: ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void apply_file(Config& cfg, const std::string& path, Origins& origins) {
  YAML::Node root;
  try {
    root = YAML::Load(read_text(path));
  } catch (const YAML::ParserException& e) {
    fail(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg);
  }
  if (root.IsNull()) return;
  auto all_sections = sections();
  if (!root.IsMap())
    fail(path, ": expected a mapping of sections (", join(all_sections), ") at the top level");
  std::map<std::string, int> seen;  // dotted key -> line
  for (const auto& sec : root) {
    std::string sec_name = sec.first.Scalar();
    std::string at = str_cat(path, ":", sec.first.Mark().line + 1);
    if (std::find(all_sections.begin(), all_sections.end(), sec_name) == all_sections.end()) {
      std::string msg = str_cat(at, ": unknown config section '", sec_name, "'");
      if (auto s = closest(sec_name, sec_name.size(), all_sections))
        fail(msg, "; did you mean '", *s, "'?");
      fail(msg, "; valid sections: ", join(all_sections));
    }
    if (sec.second.IsNull()) continue;
    if (!sec.second.IsMap())
      fail(at, ": config section '", sec_name, "' must be a mapping of keys, got ",
           describe(sec.second));
    for (const auto& kv : sec.second) {
      std::string name = str_cat(sec_name, ".", kv.first.Scalar());
      int line = kv.first.Mark().line + 1;
      std::string key_at = str_cat(path, ":", line);
      const KeyDef* key = find_key(name);
      if (!key) fail(key_at, ": ", unknown_key_message(name));
      if (auto [it, fresh] = seen.emplace(name, line); !fresh)
        fail(key_at, ": config key '", name, "' is set twice (first on line ", it->second, ")");
      assign(*key, cfg, kv.second, key_at);
      origins[key->name] = key_at;
    }
  }
}

void apply_override(Config& cfg, const std::string& text, Origins& origins) {
  const std::string where = "command line";
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    fail(where, ": override '", text,
         "' must have the form section.key=value, e.g. train.lr=3e-4 or train.betas=[0.9,0.95]");
  std::string name = text.substr(0, eq);
  std::string value = text.substr(eq + 1);
  const KeyDef* key = find_key(name);
  if (!key) fail(where, ": ", unknown_key_message(name));
  YAML::Node node;
  try {
    node = YAML::Load(value);
  } catch (const YAML::ParserException& e) {
    fail(where, ": cannot parse the value of '", name, "' as YAML: '", value, "' (", e.msg, ")");
  }
  assign(*key, cfg, node, where);
  origins[key->name] = where;
}

void validate(Config& cfg, const Origins& origins) {
  for (const KeyDef& key : kKeys) {
    Field f = key.field(cfg);
    std::string problem;
    if (!key.choices.empty()) {
      const std::string& v = *std::get<std::string*>(f);
      if (std::find(key.choices.begin(), key.choices.end(), v) == key.choices.end())
        problem = str_cat("must be one of ", join(key.choices));
    }
    if (problem.empty() && key.check) problem = key.check(f);
    if (problem.empty()) continue;
    auto it = origins.find(key.name);
    fail(it == origins.end() ? "defaults" : it->second, ": config key '", key.name, "' ", problem,
         "; got '", format_value(f), "'");
  }
}

}  // namespace

Config load_config(const std::string& yaml_path, const std::vector<std::string>& overrides) {
  Config cfg;
  Origins origins;
  if (!yaml_path.empty()) apply_file(cfg, yaml_path, origins);
  for (const std::string& o : overrides) apply_override(cfg, o, origins);
  validate(cfg, origins);
  // train.resume: True/FALSE spellings mean the same as true/false (a bool key's rule).
  if (auto b = parse_bool(cfg.train.resume)) cfg.train.resume = *b ? "true" : "false";
  return cfg;
}

std::string config_to_yaml(const Config& cfg) {
  Config copy = cfg;  // the field table hands out mutable pointers
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string_view section;
  for (const KeyDef& key : kKeys) {
    if (section_of(key.name) != section) {
      if (!section.empty()) out << YAML::EndMap;
      section = section_of(key.name);
      out << YAML::Key << std::string(section) << YAML::Value << YAML::BeginMap;
    }
    out << YAML::Key << std::string(leaf_of(key.name)) << YAML::Value;
    Field f = key.field(copy);
    if (auto* list = std::get_if<std::vector<double>*>(&f)) {
      out << YAML::Flow << YAML::BeginSeq;
      for (double x : **list) out << format_double(x);
      out << YAML::EndSeq;
    } else if (auto* names = std::get_if<std::vector<std::string>*>(&f)) {
      out << YAML::Flow << YAML::BeginSeq;
      for (const std::string& x : **names) out << x;
      out << YAML::EndSeq;
    } else if (auto* map = std::get_if<StringMap*>(&f)) {
      out << YAML::Flow << YAML::BeginMap;
      for (const auto& [k, x] : **map) out << YAML::Key << k << YAML::Value << x;
      out << YAML::EndMap;
    } else {
      // Strings go through the emitter's quoting; numbers and bools are plain already.
      out << format_value(f);
    }
    std::string doc(key.doc);
    if (!key.choices.empty()) doc += str_cat(" (", join(key.choices), ")");
    out << YAML::Comment(doc);
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> config_keys() {
  std::vector<std::string> out;
  for (const KeyDef& k : kKeys) out.emplace_back(k.name);
  return out;
}

}  // namespace lathe
