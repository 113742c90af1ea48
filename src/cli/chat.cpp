// lathe chat --model DIR: a conversation on the terminal. Each stdin line is a user turn;
// the reply streams to stdout as it is generated. /exit (or end of input) ends it, /reset
// forgets the history. The conversation is formatted as lathe's chat training data is.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/generation_common.h"
#include "cli/verbs.h"
#include "generate/chat_prompt.h"
#include "generate/stop.h"

namespace lathe::cli {
namespace {

struct ChatFlags {
  GenerationFlags common;
  std::string system;
};

int run_chat(ChatFlags f) {
  LoadedModel m = load_for_generation(f.common);
  const Tokenizer& tok = *m.tokenizer;
  GenerationOptions o = f.common.options;
  o.batch_size = 1;
  for (int32_t id : chat_stop_tokens(tok)) o.stop_tokens.push_back(id);
  const bool tty = isatty(STDIN_FILENO);
  std::vector<ChatMessage> history;
  if (!f.system.empty()) history.push_back({"system", f.system});
  std::string line;
  while (true) {
    if (tty) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      history.resize(f.system.empty() ? 0 : 1);
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    history.push_back({"user", line});
    const std::vector<int32_t> prompt = chat_prompt_ids(tok, history);
    TextStream ts(tok, prompt, o.stop_strings);
    bool started = false;  // the reply's leading space ("[INST] ... [/INST] Hi") is not shown
    auto show = [&](std::string text) {
      if (!started) {
        const size_t b = text.find_first_not_of(' ');
        text = b == std::string::npos ? "" : text.substr(b);
        started = !text.empty();
      }
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
    };
    const std::vector<Generated> out =
        m.generator->generate({prompt}, o, [&](size_t, int32_t t) { show(ts.push(t)); });
    show(ts.finish(out[0].text));
    std::fputs("\n", stdout);
    std::fflush(stdout);
    history.push_back({"assistant", out[0].text});
    if (tty) print_generation_timing(*m.generator, *m.backend);
  }
  return 0;
}

}  // namespace

Action add_chat(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("chat", "Chat with a model on the terminal (stdin lines are turns)");
  auto f = std::make_shared<ChatFlags>();
  f->common.options.max_new_tokens = 512;
  add_generation_flags(cmd, f->common);
  cmd->add_option("--system", f->system, "system prompt");
  return [f]() { return run_chat(*f); };
}

}  // namespace lathe::cli
