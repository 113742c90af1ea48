#include "train/datasets.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json.h"
#include "core/json_number.h"
#include "data/sampler.h"
#include "data/token_cache.h"
#include "eval/answer_match.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

DataSpec spec_for(const Config& cfg, const std::string& path, int64_t vocab_size) {
  DataSpec s;
  s.format = cfg.data.format;
  s.path = path;
  s.seq_len = cfg.data.seq_len;
  s.vocab_size = vocab_size;
  s.train_on_prompt = cfg.data.train_on_prompt;
  s.on_bad_row = cfg.data.on_bad_row;
  s.too_long = cfg.data.too_long;
  s.prompt_template = cfg.data.prompt_template;
  s.response_field = cfg.data.response_field;
  s.response_template = cfg.data.response_template;
  s.field_map = cfg.data.field_map;
  return s;
}

// Everything the tokenized rows depend on. The format version is part of it, so a change
// to templates or the tokenizer code invalidates old caches (bump it when they change).
uint64_t cache_key(const DataSpec& s, const std::string& model_path) {
  uint64_t h = hash_text("lathe-data-v1", kHashSeed);
  h = hash_file(s.path, h);
  for (const char* name :
       {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path p = fs::path(model_path) / name;
    h = hash_text(name, h);
    if (fs::exists(p)) h = hash_file(p.string(), h);
  }
  for (const std::string& v :
       {s.format, std::to_string(s.seq_len), std::to_string(s.train_on_prompt), s.on_bad_row,
        s.too_long, s.prompt_template, s.response_field, s.response_template})
    h = hash_text(v, h);
  for (const auto& [field, column] : s.field_map) h = hash_text(column, hash_text(field, h));
  return h;
}

DataStats stats_from_json(const nlohmann::json& j) {
  DataStats s;
  // A count that is missing or not an integer reads as 0: these only feed the log line.
  auto count = [&](const char* key) {
    return json_integer<int64_t>(j.value(key, nlohmann::json(0))).value_or(0);
  };
  s.rows = count("rows");
  s.tokens = count("tokens");
  s.targets = count("targets");
  s.skipped_bad = count("skipped_bad");
  s.truncated = count("truncated");
  s.dropped = count("dropped");
  s.first_bad = j.value("first_bad", "");
  return s;
}

nlohmann::json stats_to_json(const DataStats& s) {
  return {{"rows", s.rows},           {"tokens", s.tokens},
          {"targets", s.targets},     {"skipped_bad", s.skipped_bad},
          {"truncated", s.truncated}, {"dropped", s.dropped},
          {"first_bad", s.first_bad}};
}

}  // namespace

LoadedRows load_rows(const Config& cfg, const std::string& path, int64_t vocab_size,
                     const Tokenizer* tokenizer) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedRows out;
  const DataSpec spec = spec_for(cfg, path, vocab_size);
  validate_data_spec(spec);
  if (spec.format == "input_ids") {
    out.rows = load_dataset(spec, nullptr, &out.stats);
  } else {
    const std::string dir =
        cfg.data.cache_dir.empty() ? default_token_cache_dir() : cfg.data.cache_dir;
    uint64_t key = cache_key(spec, cfg.model.path);
    // Added special tokens change how text is split, so they are part of the key.
    if (tokenizer)
      for (int32_t id = 0; id < tokenizer->vocab_size(); ++id)
        if (tokenizer->is_special(id)) key = hash_text(tokenizer->piece(id), key);
    out.cache_path = token_cache_path(dir, key);
    const std::string stats_path = out.cache_path + ".json";
    if (auto cached = token_cache_read(out.cache_path, key); cached && fs::exists(stats_path)) {
      out.rows = std::move(*cached);
      std::ifstream f(stats_path);
      out.stats = stats_from_json(nlohmann::json::parse(f, nullptr, false));
      out.cache_hit = true;
    } else {
      std::unique_ptr<Tokenizer> own;
      if (!tokenizer) {
        own = Tokenizer::load(cfg.model.path);
        tokenizer = own.get();
      }
      LATHE_CHECK(tokenizer->vocab_size() <= vocab_size, cfg.model.path, ": the tokenizer has ",
                  tokenizer->vocab_size(), " tokens but the model's vocabulary is ", vocab_size,
                  ": the tokenizer does not belong to this model");
      const auto encoder = make_tokenizer_encoder(*tokenizer);
      out.rows = load_dataset(spec, encoder.get(), &out.stats);
      token_cache_write(out.cache_path, key, out.rows);
      std::ofstream(stats_path) << stats_to_json(out.stats).dump() << "\n";
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::vector<TokenRow> split_eval_rows(std::vector<TokenRow>& rows, double share, uint64_t seed) {
  const size_t n = rows.size();
  LATHE_CHECK(n >= 2, "data.test_split needs at least two training rows, got ", n);
  const size_t k = std::min(n - 1, std::max<size_t>(1, size_t(std::llround(share * double(n)))));
  Sampler pick(n, true, seed ^ 0x5eed5b1700000000ull, 0, 1);
  std::vector<bool> held(n, false);
  for (size_t i = 0; i < k; ++i) held[pick.next()] = true;
  std::vector<TokenRow> train, eval;
  for (size_t i = 0; i < n; ++i) (held[i] ? eval : train).push_back(std::move(rows[i]));
  rows = std::move(train);
  std::fprintf(stderr, "data.test_split=%g: %zu rows held out for eval, %zu for training\n", share,
               eval.size(), rows.size());
  return eval;
}

std::vector<ChoiceItem> load_choice_items(const Config& cfg, const std::string& path,
                                          const Tokenizer& tokenizer, int64_t max_rows) {
  const DataSpec spec = spec_for(cfg, path, tokenizer.vocab_size());
  const auto encoder = make_tokenizer_encoder(tokenizer);
  std::vector<ChoiceItem> items;
  for (const Row& row : read_rows(path, spec.format)) {
    if (max_rows > 0 && int64_t(items.size()) >= max_rows) break;
    LATHE_CHECK(row.error.empty(), row.error);
    const Example ex = render_row(spec, row, *encoder, path);
    ChoiceItem item;
    std::string response;
    for (const Segment& s : ex.segments) (s.loss ? response : item.prompt) += s.text;
    const nlohmann::json& f = row.fields;
    if (f.is_object() && f.contains("choices")) {
      LATHE_CHECK(f["choices"].is_array() && !f["choices"].empty(), path, ":", row.line,
                  ": \"choices\" must be a non-empty list of texts");
      for (const auto& c : f["choices"]) {
        LATHE_CHECK(c.is_string(), path, ":", row.line, ": \"choices\" must hold texts");
        item.choices.push_back(c.get<std::string>());
      }
    } else {
      LATHE_CHECK(spec.format == "pubmedqa", path, ":", row.line,
                  ": choice_accuracy needs a \"choices\" list in each row (or "
                  "data.format=pubmedqa, whose choices are yes/no/maybe)");
      item.choices = {"yes", "no", "maybe"};
    }
    const bool pubmed = spec.format == "pubmedqa" && !f.contains("choices");
    for (size_t c = 0; c < item.choices.size(); ++c)
      if (pubmed ? pubmedqa_label(response) == item.choices[c]
                 : exact_match(item.choices[c], response))
        item.gold = int(c);
    LATHE_CHECK(item.gold >= 0, path, ":", row.line, ": the response \"", response,
                "\" is none of the choices");
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace lathe
