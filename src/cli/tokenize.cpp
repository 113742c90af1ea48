// lathe tokenize --model FOLDER "text": ids and pieces, for debugging data and templates.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/verbs.h"
#include "tokenizer/tokenizer.h"

namespace lathe::cli {

Action add_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids and pieces of a text");
  auto model = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto no_special = std::make_shared<bool>(false);
  cmd->add_option("--model", *model, "HF model folder (tokenizer.json or tokenizer.model)")->required();
  cmd->add_option("text", *text, "text to encode")->required();
  cmd->add_flag("--no-special", *no_special, "do not add BOS/EOS");
  return [model, text, no_special]() {
    const auto tok = Tokenizer::load(*model);
    const std::vector<int32_t> ids = tok->encode(*text, !*no_special);
    std::printf("%zu tokens\n", ids.size());
    for (int32_t id : ids) std::printf("%8d  %s\n", id, tok->piece(id).c_str());
    std::printf("decoded: %s\n", tok->decode(ids).c_str());
    return 0;
  };
}

}  // namespace lathe::cli
