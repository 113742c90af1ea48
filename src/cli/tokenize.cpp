// lathe tokenize --model FOLDER "text": ids and pieces, for debugging data and templates;
// --input FILE.jsonl: the ids of many texts, one JSON line each, for comparing with
// another tokenizer.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/json_lines.h"
#include "cli/verbs.h"
#include "core/error.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace lathe::cli {
namespace {

// Each non-blank line of `path` is {"text": "..."}; prints {"ids": [...]} for each, in order.
int tokenize_file(const Tokenizer& tok, const std::string& path, bool add_special) {
  std::vector<int32_t> ids;
  for_each_json_line(path, "the input file", [&](const nlohmann::json& j, int64_t n) {
    LATHE_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), path, ":", n,
                R"(: expected an object with a string "text", e.g. {"text": "Once upon"})");
    ids.clear();
    tok.encode_into(j["text"].get_ref<const std::string&>(), add_special, ids);
    std::fputs(nlohmann::json{{"ids", ids}}.dump().c_str(), stdout);
    std::fputc('\n', stdout);
  });
  LATHE_CHECK(std::fflush(stdout) == 0, "writing the ids failed (disk full or closed pipe?)");
  return 0;
}

}  // namespace

Action add_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "tokenize", "Show the token ids and pieces of a text (or the ids of a jsonl file's texts)");
  auto model = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto no_special = std::make_shared<bool>(false);
  cmd->add_option("--model", *model, "HF model folder (tokenizer.json or tokenizer.model)")
      ->required();
  auto* text_opt = cmd->add_option("text", *text, "text to encode");
  auto* input_opt = cmd->add_option(
      "--input", *input,
      R"(jsonl file of {"text": ...} lines: prints {"ids": [...]} for each instead)");
  text_opt->excludes(input_opt);
  cmd->add_flag("--no-special", *no_special, "do not add BOS/EOS");
  return [model, text, input, no_special, text_opt, input_opt]() {
    LATHE_CHECK(text_opt->count() + input_opt->count() == 1,
                "lathe tokenize needs a text or --input FILE.jsonl");
    const auto tok = Tokenizer::load(*model);
    if (input_opt->count()) return tokenize_file(*tok, *input, !*no_special);
    const std::vector<int32_t> ids = tok->encode(*text, !*no_special);
    std::printf("%zu tokens\n", ids.size());
    for (int32_t id : ids) std::printf("%8d  %s\n", id, tok->piece(id).c_str());
    std::printf("decoded: %s\n", tok->decode(ids).c_str());
    return 0;
  };
}

}  // namespace lathe::cli
