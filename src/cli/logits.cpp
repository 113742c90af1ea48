// lathe logits --model DIR [--adapter DIR] --prompt TEXT [--output FILE]: the model's
// next-token logits at every position of one text (or of given ids), for comparing lathe
// with another implementation of the same model (transformers, PEFT) or inspecting what
// a model predicts. One forward pass without a KV cache: the path training and lathe eval
// take.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "cli/generation_common.h"
#include "cli/verbs.h"
#include "core/error.h"
#include "core/json.h"
#include "io/safetensors.h"

namespace lathe::cli {
namespace {

struct LogitsFlags {
  GenerationFlags model;
  std::string prompt, ids, output;
  bool prompt_given = false, no_special = false;
  int top = 5;
};

// "1,403, 407" -> ids; each must be a token of the model.
std::vector<int32_t> parse_ids(const std::string& text, int64_t vocab) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    LATHE_CHECK(b != std::string::npos, "--ids \"", text,
                "\": an empty entry; give comma-separated token ids, e.g. --ids 1,403,407");
    item = item.substr(b, e - b + 1);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    LATHE_CHECK(used == item.size() && v >= 0 && v < vocab, "--ids: \"", item,
                "\" is not a token id of this model (0 to ", vocab - 1, ")");
    ids.push_back(int32_t(v));
  }
  return ids;
}

int run_logits(const LogitsFlags& f) {
  // --ids needs no tokenizer: a model trained on data.format=input_ids may have none.
  LoadedModel m = load_model_folder(f.model, !f.prompt_given);
  const Tokenizer* tok = m.tokenizer.get();
  const LlamaConfig& cfg = m.model->config();
  std::vector<int32_t> ids;
  if (f.prompt_given) {
    // As `lathe tokenize` and HF's tokenizer(text): BOS/EOS as tokenizer_config.json says,
    // special tokens written in the text become those tokens.
    ids = tok->encode(f.prompt, !f.no_special);
  } else {
    ids = parse_ids(f.ids, cfg.vocab_size);
  }
  const int64_t T = int64_t(ids.size()), V = cfg.vocab_size;
  LATHE_CHECK(T > 0,
              "nothing to score: the prompt encodes to no tokens (give a text, or "
              "leave out --no-special so that BOS is added)");
  LATHE_CHECK(T <= cfg.max_position_embeddings, T, " tokens are more than the model's context (",
              "max_position_embeddings ", cfg.max_position_embeddings, ")");
  for (int32_t id : ids)
    LATHE_CHECK(id < V, "token ", id, " is outside the model's vocabulary of ", V,
                " rows (the tokenizer has more tokens than config.json's vocab_size)");

  Batch b;
  b.B = 1, b.T = T;
  b.input_ids = ids;
  b.targets.assign(size_t(T), -100);
  b.positions.resize(size_t(T));
  std::iota(b.positions.begin(), b.positions.end(), 0);
  b.doc_start.assign(size_t(T), 0);
  std::vector<float> logits(size_t(T * V));
  m.model->forward(b, logits.data());

  // Per position: the token there and the model's most likely next tokens with their
  // logits, "1: 403 ▁Once -> 407 ▁upon 18.4600, 383 ▁there 14.2911, ...".
  const int k = int(std::min<int64_t>(std::max(f.top, 0), V));
  auto piece = [&](int32_t id) {
    return tok && id < tok->vocab_size() ? " " + tok->piece(id) : std::string();
  };
  std::vector<int32_t> order(static_cast<size_t>(V));
  for (int64_t t = 0; t < T; ++t) {
    const float* z = logits.data() + t * V;
    std::printf("%lld: %d%s ->", static_cast<long long>(t), ids[size_t(t)],
                piece(ids[size_t(t)]).c_str());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t c) { return z[a] > z[c] || (z[a] == z[c] && a < c); });
    for (int i = 0; i < k; ++i)
      std::printf("%s %d%s %.4f", i ? "," : "", order[size_t(i)], piece(order[size_t(i)]).c_str(),
                  z[order[size_t(i)]]);
    std::printf("\n");
  }
  if (!f.output.empty()) {
    // safetensors holds float tensors here; the ids go in the header's metadata.
    const std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                         {"input_ids", nlohmann::json(ids).dump()},
                                                         {"model", f.model.model},
                                                         {"adapter", f.model.adapter},
                                                         {"precision", f.model.precision}};
    safetensors_write(f.output, {TensorToWrite("logits", DType::F32, {T, V}, logits.data())},
                      metadata);
    std::fprintf(stderr, "wrote logits [%lld, %lld] (fp32) to %s\n", static_cast<long long>(T),
                 static_cast<long long>(V), f.output.c_str());
  }
  return 0;
}

}  // namespace

Action add_logits(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "logits", "Print (and save) the next-token logits of a model at every position of a text");
  auto f = std::make_shared<LogitsFlags>();
  add_model_flags(cmd, f->model);
  auto* prompt = cmd->add_option("--prompt", f->prompt,
                                 "text to score, tokenized as `lathe tokenize` does (BOS as the "
                                 "tokenizer config says)");
  auto* ids = cmd->add_option("--ids", f->ids, "comma-separated token ids instead of a text");
  prompt->excludes(ids);
  cmd->add_flag("--no-special", f->no_special, "with --prompt: do not add BOS/EOS");
  cmd->add_option("--top", f->top, "most likely next tokens printed per position")
      ->capture_default_str();
  cmd->add_option("--output", f->output,
                  "write the logits here as safetensors: tensor \"logits\" [tokens, vocab] fp32, "
                  "the ids in the metadata key \"input_ids\"");
  return [f, prompt, ids]() {
    LATHE_CHECK(prompt->count() + ids->count() == 1,
                "lathe logits needs --prompt TEXT or --ids 1,2,3");
    f->prompt_given = prompt->count() > 0;
    return run_logits(*f);
  };
}

}  // namespace lathe::cli
