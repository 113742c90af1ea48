// `lathe generate` and `lathe chat` through the real binary, on the bundled stories260K.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include "core/json.h"
#include "generate/generate_test_util.h"
#include "support/command.h"
#include "tokenizer/tokenizer_test_util.h"

namespace lathe {
namespace {

struct Result {
  int status;
  std::string out;  // stdout, or stderr when asked
};

Result run(const std::string& args, bool want_stderr = false) {
  const std::string cmd =
      std::string(LATHE_BINARY) + " " + args + (want_stderr ? " 2>&1 >/dev/null" : " 2>/dev/null");
  const testing::CommandResult r = testing::run_command(cmd);
  return {r.status, r.out};
}

const std::string kModel = " --model " + gen_test::stories_dir() + " --threads 2";

TEST(GenerateCli, GreedyFromBosPrintsLlama2cText) {
  const Result r = run("generate" + kModel + " --max-new-tokens 200");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out,
            tok_test::read_file(gen_test::stories_dir() + "/expected_greedy_200.txt") + "\n");
  const Result timing = run("generate" + kModel + " --max-new-tokens 5", true);
  EXPECT_NE(timing.out.find("decode: 4 tokens"), std::string::npos) << timing.out;
}

TEST(GenerateCli, JsonlOutputHasOneRowPerPrompt) {
  const std::string dir = testing::temp_dir("generate_cli");
  std::ofstream(dir + "/prompts.jsonl") << R"({"prompt": "Lily saw"})"
                                        << "\n\n"
                                        << R"({"text": "The dog"})"
                                        << "\n";
  const Result r = run("generate" + kModel + " --prompts " + dir +
                       "/prompts.jsonl --max-new-tokens 30 --stop . --batch-size 2 --output " +
                       dir + "/out.jsonl");
  EXPECT_EQ(r.status, 0);
  std::ifstream in(dir + "/out.jsonl");
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["prompt"], "Lily saw");
  EXPECT_EQ(rows[1]["prompt"], "The dog");
  for (const auto& row : rows) {
    EXPECT_EQ(row["stop_reason"], "stop_string") << row.dump();
    EXPECT_EQ(row["completion"].get<std::string>().find('.'), std::string::npos);
    EXPECT_FALSE(row["tokens"].empty());
  }
}

TEST(GenerateCli, BadFlagsFailWithOneLine) {
  Result r = run("generate" + kModel + " --top-p 1.5", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("error: --top-p"), std::string::npos) << r.out;
  const std::string dir = testing::temp_dir("generate_cli_bad");
  std::ofstream(dir + "/p.jsonl") << R"({"prompt": "ok"})"
                                  << "\n"
                                  << R"({"prompt": 3})"
                                  << "\n";
  r = run("generate" + kModel + " --prompts " + dir + "/p.jsonl", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("p.jsonl:2"), std::string::npos) << r.out;
}

TEST(ChatCli, RepliesToEachLineUntilExit) {
  const Result r = run("chat" + kModel +
                       " --max-new-tokens 12 --system 'Be kind' <<'EOF'\n"
                       "Hello\n\nTell me a story\n/exit\nnever read\nEOF");
  EXPECT_EQ(r.status, 0);
  // One reply line per user line (the blank line is skipped), nothing after /exit.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
}

}  // namespace
}  // namespace lathe
