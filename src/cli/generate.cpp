// lathe generate --model DIR [--prompt TEXT ...] [--prompts FILE.jsonl]: completions of
// prompts (or of BOS alone), printed or written as jsonl, with prefill and decode speed.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/generation_common.h"
#include "cli/json_lines.h"
#include "cli/verbs.h"
#include "core/error.h"
#include "core/json.h"
#include "generate/stop.h"

namespace lathe::cli {
namespace {

struct GenerateFlags {
  GenerationFlags common;
  std::vector<std::string> prompts;
  std::string prompts_file, output;
  bool no_bos = false;
};

// Prompt texts from a jsonl file: field "prompt", else "text", per line.
std::vector<std::string> read_prompts(const std::string& path) {
  std::vector<std::string> out;
  for_each_json_line(path, "the prompts file", [&](const nlohmann::json& j, int64_t n) {
    const char* key = j.is_object() && j.contains("prompt") ? "prompt" : "text";
    LATHE_CHECK(
        j.is_object() && j.contains(key) && j[key].is_string(), path, ":", n,
        R"(: expected an object with a string "prompt" (or "text"), e.g. {"prompt": "Once upon"})");
    out.push_back(j[key].get<std::string>());
  });
  LATHE_CHECK(!out.empty(), path, ": no prompts in the file");
  return out;
}

int run_generate(const GenerateFlags& f) {
  LoadedModel m = load_for_generation(f.common);
  const Tokenizer& tok = *m.tokenizer;
  std::vector<std::string> texts = f.prompts;
  if (!f.prompts_file.empty())
    for (std::string& t : read_prompts(f.prompts_file)) texts.push_back(std::move(t));
  if (texts.empty()) texts.push_back("");  // from BOS alone
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string& t : texts) {
    std::vector<int32_t> ids;
    if (!f.no_bos) {
      LATHE_CHECK(tok.bos_id() >= 0, "the tokenizer has no BOS token: pass --no-bos and a prompt");
      ids.push_back(tok.bos_id());
    }
    tok.encode_into(t, /*add_special=*/false, ids);
    prompts.push_back(std::move(ids));
  }
  const GenerationOptions& o = f.common.options;

  // One prompt printed to the terminal streams as it is generated; otherwise the
  // completions come out in prompt order once all are done.
  const bool stream = prompts.size() == 1 && f.output.empty();
  std::unique_ptr<TextStream> ts;
  if (stream) {
    ts = std::make_unique<TextStream>(tok, prompts[0], o.stop_strings);
    std::fputs(texts[0].c_str(), stdout);
    std::fflush(stdout);
  }
  auto on_token = [&](size_t, int32_t t) {
    if (!ts) return;
    std::fputs(ts->push(t).c_str(), stdout);
    std::fflush(stdout);
  };
  const std::vector<Generated> out = m.generator->generate(prompts, o, on_token);

  if (stream) {
    std::printf("%s\n", ts->finish(out[0].text).c_str());
  } else if (f.output.empty()) {
    for (size_t i = 0; i < out.size(); ++i)
      std::printf("%s%s%s\n", i ? "---\n" : "", texts[i].c_str(), out[i].text.c_str());
  } else {
    std::ofstream file(f.output);
    LATHE_CHECK(file, f.output, ": cannot write the output file");
    for (size_t i = 0; i < out.size(); ++i) {
      nlohmann::json j = {{"prompt", texts[i]},
                          {"completion", out[i].text},
                          {"tokens", out[i].tokens},
                          {"stop_reason", out[i].stop_reason}};
      file << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    }
    LATHE_CHECK(file.flush(), f.output, ": write failed (disk full?)");
    std::fprintf(stderr, "wrote %zu completions to %s\n", out.size(), f.output.c_str());
  }
  print_generation_timing(*m.generator, *m.backend);
  return 0;
}

}  // namespace

Action add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate text from prompts with a model folder");
  auto f = std::make_shared<GenerateFlags>();
  add_generation_flags(cmd, f->common);
  cmd->add_option("--prompt", f->prompts, "prompt text (repeatable); none: generate from BOS")
      ->allow_extra_args(false);
  cmd->add_option("--prompts", f->prompts_file,
                  R"(jsonl file of {"prompt": ...} or {"text": ...})");
  cmd->add_option("--batch-size", f->common.options.batch_size, "sequences decoded together")
      ->capture_default_str();
  cmd->add_flag("--no-bos", f->no_bos, "do not put BOS before each prompt");
  cmd->add_option("--output", f->output,
                  "write jsonl (prompt, completion, tokens, stop_reason) here instead of printing");
  return [f]() { return run_generate(*f); };
}

}  // namespace lathe::cli
