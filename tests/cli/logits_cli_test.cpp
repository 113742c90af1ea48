// `lathe logits` and `lathe tokenize --input` through the real binary: the logits equal
// the PyTorch reference's (with and without a LoRA adapter), the ids equal the tokenizer's,
// and bad input fails with one line naming what is wrong.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "io/safetensors.h"
#include "model/golden.h"
#include "support/command.h"
#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {

struct CliRun {
  int status;
  std::string out;  // stdout, or stdout and stderr together when asked
};

CliRun run(const std::string& args, bool with_stderr = false) {
  const std::string cmd =
      std::string(LATHE_BINARY) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  const testing::CommandResult r = testing::run_command(cmd);
  return {r.status, r.out};
}

const std::string kStories = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K";

// Row `row` of the reference batch, as --ids text.
std::string reference_ids(const SafetensorsFile& fwd, int64_t row, std::vector<int32_t>* ids) {
  const TensorInfo* t = fwd.find("input_ids");
  const int64_t T = t->shape[1];
  std::string text;
  for (int64_t i = 0; i < T; ++i) {
    ids->push_back(int32_t(static_cast<const float*>(t->data)[row * T + i]));
    text += (i ? "," : "") + std::to_string(ids->back());
  }
  return text;
}

// The reference models have no tokenizer: --ids needs none. Both rows of the reference
// batch, each scored alone (positions from 0, as the reference computes every row).
TEST(LogitsCli, EqualsThePyTorchReferenceWithAndWithoutAnAdapter) {
  for (const std::string& name : testing::golden_cases()) {
    const std::string dir = testing::golden_dir(name);
    const std::string out = testing::temp_dir("logits_cli_" + name) + "/logits.safetensors";
    SafetensorsFile fwd(dir + "/forward.safetensors"), lora_fwd(dir + "/lora/forward.safetensors");
    for (int64_t row = 0; row < 2; ++row) {
      for (bool adapter : {false, true}) {
        std::vector<int32_t> ids;
        const std::string list = reference_ids(fwd, row, &ids);
        const CliRun r =
            run("logits --model " + dir + "/model --threads 2 --top 3 --ids " + list +
                (adapter ? " --adapter " + dir + "/lora/adapter" : "") + " --output " + out);
        ASSERT_EQ(r.status, 0) << name << r.out;
        SafetensorsFile got(out);
        const TensorInfo* logits = got.find("logits");
        ASSERT_NE(logits, nullptr);
        const int64_t T = int64_t(ids.size()), V = logits->shape[1];
        ASSERT_EQ(logits->shape, (std::vector<int64_t>{T, V}));
        EXPECT_EQ(got.metadata().at("input_ids"), nlohmann::json(ids).dump());
        const TensorInfo* want = (adapter ? lora_fwd : fwd).find("logits");
        const double err =
            testing::rel_error(static_cast<const float*>(logits->data),
                               static_cast<const float*>(want->data) + row * T * V, size_t(T * V));
        EXPECT_LT(err, 1e-5) << name << " row " << row << (adapter ? " with adapter" : "");
        // One line per position, the most likely next token first.
        EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), T) << r.out;
      }
    }
  }
}

TEST(LogitsCli, PromptIsTokenizedAsLatheTokenizeDoes) {
  const std::string dir = testing::temp_dir("logits_cli_prompt");
  const auto tok = Tokenizer::load(kStories);
  const std::string text = "Once upon a time</s> Lily";
  const std::vector<int32_t> ids = tok->encode(text);  // BOS, and </s> as the token
  ASSERT_EQ(ids.front(), tok->bos_id());
  const CliRun a = run("logits --model " + kStories + " --threads 2 --prompt '" + text +
                       "' --output " + dir + "/a.safetensors");
  ASSERT_EQ(a.status, 0) << a.out;
  std::string list;
  for (int32_t id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  const CliRun b = run("logits --model " + kStories + " --threads 2 --ids " + list + " --output " +
                       dir + "/b.safetensors");
  ASSERT_EQ(b.status, 0) << b.out;
  EXPECT_EQ(a.out, b.out);  // the printed top tokens too
  SafetensorsFile fa(dir + "/a.safetensors"), fb(dir + "/b.safetensors");
  EXPECT_EQ(fa.metadata().at("input_ids"), nlohmann::json(ids).dump());
  const TensorInfo *la = fa.find("logits"), *lb = fb.find("logits");
  ASSERT_EQ(la->nbytes, lb->nbytes);
  EXPECT_EQ(std::memcmp(la->data, lb->data, la->nbytes), 0);
  // stories260K continues "<s> Once" with " upon".
  EXPECT_NE(a.out.find("\n1: 403 ▁Once -> 407 ▁upon 18.46"), std::string::npos) << a.out;
  // --no-special leaves BOS out.
  const CliRun c = run("logits --model " + kStories + " --threads 2 --no-special --prompt Once");
  ASSERT_EQ(c.status, 0);
  EXPECT_EQ(c.out.rfind("0: 403 ▁Once -> 407 ▁upon", 0), 0u) << c.out;
}

TEST(LogitsCli, BadInputFailsWithOneLine) {
  const std::string golden = testing::golden_dir("gqa_untied") + "/model";
  const struct {
    std::string args, message;
  } cases[] = {
      {"logits --model " + kStories, "needs --prompt TEXT or --ids"},
      {"logits --model " + kStories + " --ids 1,512", "\"512\" is not a token id"},
      {"logits --model " + kStories + " --ids 1,,2", "an empty entry"},
      {"logits --model " + kStories + " --ids 1,x", "\"x\" is not a token id"},
      {"logits --model " + kStories + " --prompt '' --no-special", "nothing to score"},
      {"logits --model " + golden + " --prompt hi", "no tokenizer.json or tokenizer.model"},
      {"tokenize --model " + kStories, "needs a text or --input"},
  };
  for (const auto& c : cases) {
    const CliRun r = run(c.args, true);
    EXPECT_EQ(r.status, 1) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\n" << r.out;
  }
}

TEST(TokenizeCli, InputFilePrintsTheIdsOfEachLine) {
  const std::string dir = testing::temp_dir("tokenize_cli");
  const std::vector<std::string> texts = {"Once upon a time", "", "a<s>b </s>", "  two  spaces\n"};
  {
    std::ofstream f(dir + "/texts.jsonl");
    for (const std::string& t : texts) f << nlohmann::json{{"text", t}}.dump() << "\n\n";
  }
  const auto tok = Tokenizer::load(kStories);
  for (bool special : {true, false}) {
    const CliRun r = run("tokenize --model " + kStories + " --input " + dir + "/texts.jsonl" +
                         (special ? "" : " --no-special"));
    ASSERT_EQ(r.status, 0);
    std::string expected;
    for (const std::string& t : texts)
      expected += nlohmann::json{{"ids", tok->encode(t, special)}}.dump() + "\n";
    EXPECT_EQ(r.out, expected);
  }
  std::ofstream(dir + "/bad.jsonl") << R"({"text": "ok"})"
                                    << "\n"
                                    << R"({"prompt": "no"})"
                                    << "\n";
  const CliRun bad = run("tokenize --model " + kStories + " --input " + dir + "/bad.jsonl", true);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("bad.jsonl:2: expected an object with a string \"text\""),
            std::string::npos)
      << bad.out;
}

}  // namespace
}  // namespace lathe
