// Prompt templates on real rows (GSM8K, SAMSum, PubMedQA fixtures; Alpaca-format and chat rows
// written for these tests): the rendered text, and that exactly the response tokens and
// EOS carry labels. A fake byte-level encoder stands in for the tokenizer.
#include "data/formats.h"
#include "train/config.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"

#ifndef LATHE_SOURCE_DIR
#define LATHE_SOURCE_DIR "."
#endif

namespace lathe {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;
using Json = nlohmann::json;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << part << "\" not found in: " << text;
}

std::string fixture(const std::string& name) {
  return std::string(LATHE_SOURCE_DIR) + "/tests/data/fixtures/" + name;
}

constexpr int32_t kByteBase = 10;  // byte b encodes to id b + 10

// Each byte is one token, so expected ids follow from the text alone. The Llama 3 flavour
// has the chat header tokens; the Llama 2 flavour has none, like the real vocabularies.
class FakeEncoder final : public TextEncoder {
 public:
  explicit FakeEncoder(bool llama3 = false, bool adds_bos = true)
      : llama3_(llama3), adds_bos_(adds_bos) {}
  std::vector<int32_t> encode(std::string_view text) const override {
    Ids ids;
    for (unsigned char c : text) ids.push_back(kByteBase + c);
    return ids;
  }
  int32_t bos_id() const override { return llama3_ ? 300 : 1; }
  int32_t eos_id() const override { return llama3_ ? 304 : 2; }
  std::optional<int32_t> special(std::string_view token) const override {
    if (!llama3_) return std::nullopt;
    if (token == "<|begin_of_text|>") return 300;
    if (token == "<|start_header_id|>") return 301;
    if (token == "<|end_header_id|>") return 302;
    if (token == "<|eot_id|>") return 303;
    return std::nullopt;
  }
  bool adds_bos() const override { return adds_bos_; }

 private:
  bool llama3_, adds_bos_;
};

Ids bytes(std::string_view text) { return FakeEncoder().encode(text); }

Ids concat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Ids masked(size_t n) { return Ids(n, -100); }

DataSpec spec_for(const std::string& format, const std::string& path, int64_t seq_len = 4096) {
  DataSpec spec;
  spec.format = format;
  spec.path = path;
  spec.seq_len = seq_len;
  return spec;
}

// A prompt/response row: BOS and the prompt carry no loss; the response and EOS do.
void expect_pair(const TokenRow& row, const std::string& prompt, const std::string& response) {
  EXPECT_EQ(row.input_ids, concat({{1}, bytes(prompt), bytes(response), {2}}));
  EXPECT_EQ(row.labels, concat({masked(1 + prompt.size()), bytes(response), {2}}));
}

Json read_json_lines(const std::string& path) {
  Json rows = Json::array();
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) rows.push_back(Json::parse(line));
  return rows;
}

class FormatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / str_cat("lathe_formats_test_", getpid(), "_", info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::vector<TokenRow> load(const DataSpec& spec, DataStats* stats = nullptr) {
    return load_dataset(spec, &enc_, stats);
  }

  std::string load_error(const DataSpec& spec, const TextEncoder* enc = nullptr) {
    try {
      load_dataset(spec, enc ? enc : &enc_, nullptr);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected a lathe::Error loading " << spec.path;
    return "";
  }

  // The text the template renders for the first row of `spec`'s file.
  std::string first_text(const DataSpec& spec, const TextEncoder* enc = nullptr) {
    auto rows = read_rows(spec.path, spec.format);
    return example_text(render_row(spec, rows.at(0), enc ? *enc : enc_, spec.path));
  }

  FakeEncoder enc_;
  fs::path dir_;
};

TEST_F(FormatsTest, Gsm8kRealRows) {
  DataSpec spec = spec_for("gsm8k", fixture("gsm8k_train_head.jsonl"));
  const std::string prompt =
      "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as "
      "many clips in May. How many clips did Natalia sell altogether in April and May?\nAnswer: ";
  const std::string answer =
      "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 "
      "clips altogether in April and May.\n#### 72";
  EXPECT_EQ(first_text(spec), prompt + answer);
  DataStats stats;
  auto rows = load(spec, &stats);
  Json raw = read_json_lines(spec.path);
  ASSERT_EQ(rows.size(), raw.size());
  ASSERT_EQ(rows.size(), 4u);
  expect_pair(rows[0], prompt, answer);
  for (size_t i = 1; i < rows.size(); ++i)
    expect_pair(rows[i], "Question: " + raw[i]["question"].get<std::string>() + "\nAnswer: ",
                raw[i]["answer"].get<std::string>());
  EXPECT_EQ(stats.rows, 4);
  int64_t tokens = 0, targets = 0;
  for (size_t i = 0; i < 4; ++i) {
    tokens += static_cast<int64_t>(rows[i].input_ids.size());
    targets += static_cast<int64_t>(raw[i]["answer"].get<std::string>().size()) + 1;  // + EOS
  }
  EXPECT_EQ(stats.tokens, tokens);
  EXPECT_EQ(stats.targets, targets);
  EXPECT_EQ(stats.skipped_bad + stats.truncated + stats.dropped, 0);
}

TEST_F(FormatsTest, SamsumRealRows) {
  auto rows = load(spec_for("samsum", fixture("samsum_validation_rows.csv")));
  ASSERT_EQ(rows.size(), 4u);
  auto prompt = [](const std::string& d) {
    return "Summarize this dialog:\n" + d + "\n---\nSummary:\n";
  };
  EXPECT_EQ(first_text(spec_for("samsum", fixture("samsum_validation_rows.csv"))),
            "Summarize this dialog:\nAiden: Are you free now?\nSilvia: 5 mins please\nAiden: k\n"
            "---\nSummary:\nSilvia will be free in 5 minutes.");
  expect_pair(rows[0], prompt("Aiden: Are you free now?\nSilvia: 5 mins please\nAiden: k"),
              "Silvia will be free in 5 minutes.");
  expect_pair(rows[1],
              prompt("Ramzi: Mom is calling for supper\nJannette: Ok Im coming \nRamzi: "
                     "\xF0\x9F\x91\x8D"),
              "Ramzi and Jannette are going for supper.");
  expect_pair(
      rows[2],
      prompt("Brian: let me send you the voting link, please vote for sam\nMichelle: okay "
             "then\nBrian: \"m.victoriacontest.com/ vote for Bianca\"\nMichelle: Okay then."),
      "Brian sent Michelle a link so she can vote for Sam. ");
  expect_pair(rows[3],
              prompt("Tom: Where is the \"Sala del Capitolo\"\nKevin: it's in the main building\n"
                     "Martin: The one with the huge round table\nTom: ok! I know.\nTom: Thx"),
              "\"Sala del Capitolo\" Tom is looking for is in the main building.");
}

TEST_F(FormatsTest, PubmedqaOriPqalRows) {
  DataSpec spec = spec_for("pubmedqa", fixture("pubmedqa_ori_pqal_head.json"));
  auto rows = load(spec);
  Json raw;
  std::ifstream(spec.path) >> raw;
  ASSERT_EQ(rows.size(), 3u);
  size_t i = 0;
  for (auto& [id, e] : raw.items()) {  // nlohmann sorts keys; find each row by its question
    std::string context;
    for (const auto& c : e["CONTEXTS"])
      context += (context.empty() ? "" : "\n") + c.get<std::string>();
    std::string prompt =
        "Question: " + e["QUESTION"].get<std::string>() + "\nContext: " + context + "\nAnswer: ";
    std::string answer =
        e["final_decision"].get<std::string>() + ". " + e["LONG_ANSWER"].get<std::string>();
    bool found = false;
    for (const TokenRow& row : rows)
      if (row.input_ids == concat({{1}, bytes(prompt), bytes(answer), {2}})) {
        expect_pair(row, prompt, answer);
        found = true;
      }
    EXPECT_TRUE(found) << "no row for " << id;
    ++i;
  }
  EXPECT_EQ(i, 3u);
  std::string text = first_text(spec);
  EXPECT_TRUE(text.starts_with(
      "Question: Do mitochondria play a role in remodelling lace plant leaves during programmed "
      "cell death?\nContext: Programmed cell death (PCD) is the regulated death of cells"));
  EXPECT_TRUE(Contains(text, "less studied during PCD in plants.\nThe following paper elucidates"));
  EXPECT_TRUE(
      Contains(text, "non-PCD cells.\nAnswer: yes. Results depicted mitochondrial dynamics"));
}

TEST_F(FormatsTest, PubmedqaFlatRows) {
  DataSpec spec = spec_for("pubmedqa", fixture("pubmedqa_flat.jsonl"));
  EXPECT_EQ(first_text(spec),
            "Question: Landolt C and snellen e acuity: differences in strabismus amblyopia?\n"
            "Context: Assessment of visual acuity depends on the optotypes used for measurement.\n"
            "Answer: no");
  auto rows = load(spec);
  ASSERT_EQ(rows.size(), 2u);
  expect_pair(rows[1],
              "Question: Syncope during bathing in infants, a pediatric form of water-induced "
              "urticaria?\nContext: Apparent life-threatening events in infants are a difficult "
              "and frequent problem in pediatric practice.\nAnswer: ",
              "yes");
}

TEST_F(FormatsTest, AlpacaWithAndWithoutInput) {
  DataSpec spec = spec_for("alpaca", fixture("alpaca_rows.json"));
  const std::string no_input =
      "Below is an instruction that describes a task. Write a response that appropriately "
      "completes the request.\n\n### Instruction:\nName the largest planet in the solar "
      "system.\n\n### Response:";
  EXPECT_EQ(first_text(spec), no_input + "Jupiter is the largest planet in the solar system.");
  auto rows = load(spec);
  ASSERT_EQ(rows.size(), 3u);
  expect_pair(rows[0], no_input, "Jupiter is the largest planet in the solar system.");
  expect_pair(rows[1],
              "Below is an instruction that describes a task, paired with an input that provides "
              "further context. Write a response that appropriately completes the request.\n\n"
              "### Instruction:\nTranslate the sentence into French.\n\n### Input:\nThe cat "
              "sleeps on the sofa.\n\n### Response:",
              "Le chat dort sur le canap\xC3\xA9.");
  // A missing or null "input" is the no-input prompt too, as in llama-recipes.
  spec.path = write("a.jsonl", R"({"instruction": "Hi", "input": null, "output": "Hello"})");
  expect_pair(load(spec).at(0),
              "Below is an instruction that describes a task. Write a response that appropriately "
              "completes the request.\n\n### Instruction:\nHi\n\n### Response:",
              "Hello");
}

TEST_F(FormatsTest, ChatLlama2) {
  DataSpec spec = spec_for("chat", fixture("chat_rows.jsonl"));
  EXPECT_EQ(first_text(spec),
            "<s>[INST] <<SYS>>\nYou are a concise assistant.\n<</SYS>>\n\nWhat is 2 + 3? "
            "[/INST]5 </s>");
  auto rows = load(spec);
  ASSERT_EQ(rows.size(), 3u);
  Ids p1 = concat({{1},
                   bytes("[INST] <<SYS>>\nYou are a concise assistant.\n<</SYS>>\n\nWhat is "
                         "2 + 3? [/INST]")});
  EXPECT_EQ(rows[0].input_ids, concat({p1, bytes("5 "), {2}}));
  EXPECT_EQ(rows[0].labels, concat({masked(p1.size()), bytes("5 "), {2}}));
  // Two turns: <s>[INST] u1 [/INST] a1 </s><s>[INST] u2 [/INST] a2 </s>, loss on a1 </s>, a2 </s>.
  Ids u1 = concat({{1}, bytes("[INST] Say hi. [/INST]")}), a1 = concat({bytes("Hi! "), {2}});
  Ids u2 = concat({{1}, bytes("[INST] Now in Spanish. [/INST]")});
  Ids a2 = concat({bytes("\xC2\xA1Hola! "), {2}});
  EXPECT_EQ(rows[1].input_ids, concat({u1, a1, u2, a2}));
  EXPECT_EQ(rows[1].labels, concat({masked(u1.size()), a1, masked(u2.size()), a2}));
  // Contents are stripped, as Meta's reference and the HF template do.
  EXPECT_EQ(rows[2].input_ids,
            concat({{1}, bytes("[INST] Spaces around. [/INST]"), bytes("Trimmed. "), {2}}));
}

TEST_F(FormatsTest, ChatLlama3) {
  FakeEncoder llama3(/*llama3=*/true);
  DataSpec spec = spec_for("chat", fixture("chat_rows.jsonl"));
  EXPECT_EQ(first_text(spec, &llama3),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a concise "
            "assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + "
            "3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n5<|eot_id|>");
  auto rows = load_dataset(spec, &llama3, nullptr);
  ASSERT_EQ(rows.size(), 3u);
  auto header = [](const std::string& role) {
    return concat({{301}, bytes(role), {302}, bytes("\n\n")});
  };
  Ids prompt = concat({{300},
                       header("system"),
                       bytes("You are a concise assistant."),
                       {303},
                       header("user"),
                       bytes("What is 2 + 3?"),
                       {303},
                       header("assistant")});
  EXPECT_EQ(rows[0].input_ids, concat({prompt, bytes("5"), {303}}));
  EXPECT_EQ(rows[0].labels, concat({masked(prompt.size()), bytes("5"), {303}}));
  Ids u1 = concat({{300}, header("user"), bytes("Say hi."), {303}, header("assistant")});
  Ids a1 = concat({bytes("Hi!"), {303}});
  Ids u2 = concat({header("user"), bytes("Now in Spanish."), {303}, header("assistant")});
  Ids a2 = concat({bytes("\xC2\xA1Hola!"), {303}});
  EXPECT_EQ(rows[1].input_ids, concat({u1, a1, u2, a2}));
  EXPECT_EQ(rows[1].labels, concat({masked(u1.size()), a1, masked(u2.size()), a2}));
}

TEST_F(FormatsTest, ChatErrorsNameTheMessage) {
  auto error = [&](const std::string& messages, const TextEncoder* enc = nullptr) {
    return load_error(spec_for("chat", write("c.jsonl", "\n{\"messages\": " + messages + "}\n")),
                      enc);
  };
  EXPECT_TRUE(Contains(error(R"([{"role": "human", "content": "x"}])"),
                       "c.jsonl:2: messages[0] has role \"human\"; expected system, user or "
                       "assistant"));
  EXPECT_TRUE(Contains(error(R"([{"role": "user"}])"),
                       "c.jsonl:2: messages[0] needs a string "
                       "\"content\""));
  EXPECT_TRUE(Contains(error(R"([{"role": "user", "content": "x"}])"),
                       "c.jsonl:2: the conversation has no assistant message"));
  const std::string twice =
      R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, )"
      R"({"role": "assistant", "content": "c"}])";
  EXPECT_TRUE(Contains(error(twice),
                       "c.jsonl:2: messages[1] is user; the Llama 2 chat format "
                       "needs roles to alternate"));
  FakeEncoder llama3(true);
  DataSpec any_order = spec_for("chat", write("l3.jsonl", "{\"messages\": " + twice + "}\n"));
  EXPECT_EQ(load_dataset(any_order, &llama3, nullptr).size(), 1u);  // Llama 3 has no such rule
  EXPECT_TRUE(Contains(error("[]"), "field \"messages\" must be a non-empty array"));
  EXPECT_TRUE(Contains(load_error(spec_for("chat", write("m.jsonl", R"({"conversation": []})"))),
                       "m.jsonl:1: missing field \"messages\""));
}

TEST_F(FormatsTest, TextFormatTrainsOnEverything) {
  DataSpec spec = spec_for("text", write("corpus.txt", "Once upon a time.\n\nThe end.\n"));
  DataStats stats;
  auto rows = load(spec, &stats);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].input_ids, concat({{1}, bytes("Once upon a time."), {2}}));
  EXPECT_TRUE(rows[0].labels.empty());  // = input_ids: every position after BOS is a target
  EXPECT_EQ(stats.targets, static_cast<int64_t>(17 + 1 + 8 + 1));
  // jsonl rows with a "text" field work too.
  spec.path = write("t.jsonl", R"({"text": "abc"})");
  EXPECT_EQ(load(spec).at(0).input_ids, concat({{1}, bytes("abc"), {2}}));
}

TEST_F(FormatsTest, NoBosWhenTheTokenizerAddsNone) {
  FakeEncoder no_bos(false, /*adds_bos=*/false);
  auto rows = load_dataset(
      spec_for("gsm8k", write("g.jsonl", R"({"question": "q", "answer": "a"})")), &no_bos, nullptr);
  EXPECT_EQ(rows.at(0).input_ids, concat({bytes("Question: q\nAnswer: a"), {2}}));
  EXPECT_EQ(rows[0].labels, concat({masked(20), bytes("a"), {2}}));
}

TEST_F(FormatsTest, TrainOnPromptGivesEveryToken) {
  DataSpec spec = spec_for("gsm8k", write("g.jsonl", R"({"question": "q", "answer": "a"})"));
  spec.train_on_prompt = true;
  auto rows = load(spec);
  EXPECT_EQ(rows.at(0).input_ids, concat({{1}, bytes("Question: q\nAnswer: a"), {2}}));
  EXPECT_TRUE(rows[0].labels.empty());
}

TEST_F(FormatsTest, UserTemplateWithFieldMap) {
  DataSpec spec = spec_for("template", write("t.csv", "query,reply,n\n\"What, now?\",Later,7\n"));
  spec.prompt_template = "Q: {question} ({n}) {{literal}}\nA: ";
  spec.response_field = "answer";
  spec.field_map = {{"question", "query"}, {"answer", "reply"}};
  EXPECT_EQ(first_text(spec), "Q: What, now? (7) {literal}\nA: Later");
  expect_pair(load(spec).at(0), "Q: What, now? (7) {literal}\nA: ", "Later");
  spec.response_field.clear();
  spec.response_template = "{answer}!";
  expect_pair(load(spec).at(0), "Q: What, now? (7) {literal}\nA: ", "Later!");
}

TEST_F(FormatsTest, MissingFieldErrorsNameFileLineFieldAndTemplate) {
  DataSpec spec = spec_for("template", write("t.jsonl",
                                             "{\"query\": \"a\", \"reply\": \"b\"}\n"
                                             "{\"reply\": \"b\"}\n"));
  spec.prompt_template = "Q: {question}\nA: ";
  spec.response_field = "reply";
  spec.field_map = {{"question", "query"}};
  EXPECT_TRUE(Contains(load_error(spec),
                       "t.jsonl:2: missing field \"query\" (template field \"question\" via "
                       "data.field_map) needed by data.prompt_template \"Q: {question}\\nA: \"; "
                       "the row has: reply"));
  DataSpec gsm = spec_for("gsm8k", write("g.jsonl", "{\"question\": \"q\"}\n"));
  EXPECT_TRUE(Contains(load_error(gsm),
                       "g.jsonl:1: missing field \"answer\" needed by the gsm8k "
                       "response template \"{answer}\""));
  DataSpec sam = spec_for("samsum", write("s.csv", "id,dialog,summary\n1,hi,bye\n"));
  EXPECT_TRUE(Contains(load_error(sam),
                       "s.csv:2: missing field \"dialogue\" needed by the samsum "
                       "prompt template \"Summarize this dialog:\\n{dialogue}"));
  DataSpec ori =
      spec_for("pubmedqa", write("p.json", R"({"1": {"QUESTION": "q", "CONTEXTS": []}})"));
  EXPECT_TRUE(Contains(load_error(ori),
                       "p.json:1: missing field \"LONG_ANSWER\" needed by the "
                       "pubmedqa template (ori_pqal.json layout)"));
  DataSpec typed = spec_for("gsm8k", write("n.jsonl", R"({"question": ["q"], "answer": "a"})"));
  EXPECT_TRUE(Contains(load_error(typed), "n.jsonl:1: field \"question\" is array, expected text"));
}

TEST_F(FormatsTest, BadRowsStopTheLoadOrAreSkippedAndCounted) {
  const std::string text =
      "{\"question\": \"q1\", \"answer\": \"a1\"}\n"
      "{\"question\": \"q2\", \"answer\": }\n"            // malformed JSON
      "{\"question\": \"q3\"}\n"                          // missing field
      "{\"question\": \"caf\xE9\", \"answer\": \"a\"}\n"  // not UTF-8
      "{\"question\": \"q5\", \"answer\": \"a5\"}\n";
  DataSpec spec = spec_for("gsm8k", write("mixed.jsonl", text));
  std::string e = load_error(spec);
  EXPECT_TRUE(Contains(e, "mixed.jsonl:2:30: invalid JSON"));
  EXPECT_TRUE(Contains(e, "data.on_bad_row=skip"));
  spec.on_bad_row = "skip";
  DataStats stats;
  auto rows = load(spec, &stats);
  ASSERT_EQ(rows.size(), 2u);
  expect_pair(rows[0], "Question: q1\nAnswer: ", "a1");
  expect_pair(rows[1], "Question: q5\nAnswer: ", "a5");
  EXPECT_EQ(stats.rows, 2);
  EXPECT_EQ(stats.skipped_bad, 3);
  EXPECT_TRUE(Contains(stats.first_bad, "mixed.jsonl:2:30"));
  // Nothing usable at all is still an error.
  spec.path = write("allbad.jsonl", "{\"q\": 1}\n{\"q\": 2}\n");
  EXPECT_TRUE(Contains(load_error(spec), "allbad.jsonl: all 2 rows are bad; the first: "));
}

TEST_F(FormatsTest, TooLongRowsAreTruncatedOrDropped) {
  // Row lengths: BOS + "Question: " (10) + question + "\nAnswer: " (9) + answer + EOS.
  const std::string text =
      "{\"question\": \"q\", \"answer\": \"a\"}\n"                 // 23 tokens
      "{\"question\": \"q\", \"answer\": \"abcdefghij\"}\n"        // 32 tokens
      "{\"question\": \"qqqqqqqqqqqqqqq\", \"answer\": \"a\"}\n";  // 37
  DataSpec spec = spec_for("gsm8k", write("long.jsonl", text), 30);
  DataStats stats;
  auto rows = load(spec, &stats);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].input_ids.size(), 30u);
  EXPECT_EQ(rows[1].input_ids, concat({{1}, bytes("Question: q\nAnswer: abcdefghi")}));
  EXPECT_EQ(rows[1].labels, concat({masked(21), bytes("abcdefghi")}));
  EXPECT_EQ(stats.truncated, 1);
  EXPECT_EQ(stats.dropped, 1);  // the third keeps no answer token within 30: nothing to learn
  EXPECT_EQ(stats.tokens, 23 + 30);
  EXPECT_EQ(stats.targets, 2 + 9);
  spec.too_long = "drop";
  rows = load(spec, &stats);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(stats.dropped, 2);
  EXPECT_EQ(stats.truncated, 0);
  spec.seq_len = 10;
  EXPECT_TRUE(Contains(load_error(spec),
                       "long.jsonl: no usable rows: 3 of 3 rows are longer than "
                       "data.seq_len=10"));
}

TEST_F(FormatsTest, InputIdsReusesThePreTokenizedReader) {
  DataSpec spec = spec_for("input_ids",
                           write("ids.jsonl",
                                 "{\"input_ids\": [1, 5, 6, 7]}\n"
                                 "{\"input_ids\": [1, 5], \"labels\": "
                                 "[-100, 5]}\n"),
                           3);
  spec.vocab_size = 32;
  DataStats stats;
  auto rows = load_dataset(spec, nullptr, &stats);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].input_ids, (Ids{1, 5, 6}));
  EXPECT_EQ(rows[1].labels, (Ids{-100, 5}));
  EXPECT_EQ(stats.truncated, 1);
  spec.on_bad_row = "skip";
  EXPECT_TRUE(Contains(load_error(spec), "data.on_bad_row=skip is not supported"));
}

TEST_F(FormatsTest, OutputDoesNotDependOnTheThreadCount) {
  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += str_cat("{\"question\": \"question ", i, std::string(i % 37, '?'), "\", \"answer\": \"",
                    i * 7, "\"}\n");
  text += "{\"question\": \"no answer\"}\n";
  DataSpec spec = spec_for("gsm8k", write("many.jsonl", text));
  spec.on_bad_row = "skip";
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  DataStats one_stats, many_stats;
  auto one = load(spec, &one_stats);
  omp_set_num_threads(std::max(4, threads));
  auto many = load(spec, &many_stats);
  omp_set_num_threads(threads);
  ASSERT_EQ(one.size(), 2000u);
  ASSERT_EQ(many.size(), 2000u);
  for (size_t i = 0; i < one.size(); ++i) {
    ASSERT_EQ(one[i].input_ids, many[i].input_ids) << i;
    ASSERT_EQ(one[i].labels, many[i].labels) << i;
  }
  EXPECT_EQ(one_stats.tokens, many_stats.tokens);
  EXPECT_EQ(many_stats.skipped_bad, 1);
  for (int i : {0, 1, 999, 1999})
    expect_pair(many[i], str_cat("Question: question ", i, std::string(i % 37, '?'), "\nAnswer: "),
                std::to_string(i * 7));
}

TEST_F(FormatsTest, SpecErrorsNameTheConfigKey) {
  DataSpec spec = spec_for("gsm8k", "x.jsonl");
  spec.format = "alpacca";
  EXPECT_TRUE(Contains(load_error(spec),
                       "data.format: unknown format \"alpacca\"; expected one "
                       "of: alpaca, chat, gsm8k, input_ids"));
  spec = spec_for("gsm8k", "x.jsonl");
  spec.on_bad_row = "ignore";
  EXPECT_TRUE(Contains(load_error(spec), "data.on_bad_row: expected \"error\" or \"skip\""));
  spec = spec_for("gsm8k", "x.jsonl");
  spec.too_long = "wrap";
  EXPECT_TRUE(Contains(load_error(spec), "data.too_long: expected \"truncate\" or \"drop\""));
  spec = spec_for("gsm8k", "x.jsonl");
  spec.prompt_template = "Q: {q}";
  EXPECT_TRUE(Contains(load_error(spec),
                       "data.prompt_template is only used with "
                       "data.format=template"));
  spec = spec_for("template", "x.jsonl");
  spec.prompt_template = "Q: {question\nA: ";
  spec.response_field = "answer";
  EXPECT_TRUE(Contains(load_error(spec), "data.prompt_template: unmatched '{' at character 4"));
  spec.prompt_template = "Q: {question}";
  spec.response_template = "{answer}";
  EXPECT_TRUE(Contains(load_error(spec), "exactly one of data.response_field"));
  spec.response_field.clear();
  spec.response_template = "{answer}}";
  EXPECT_TRUE(Contains(load_error(spec), "data.response_template: unmatched '}' at character 9"));
  EXPECT_TRUE(
      Contains(load_error(spec_for("gsm8k", "x.jsonl", 1)), "data.seq_len must be at least"));
}

}  // namespace
}  // namespace lathe

namespace lathe {
namespace {

// The config validates data.format against its own list; it must name the same formats
// the data layer implements.
TEST(FormatsConfig, ConfigAcceptsExactlyTheImplementedFormats) {
  for (const std::string& f : data_formats())
    EXPECT_NO_THROW(load_config("", {"data.format=" + f})) << f;
  EXPECT_THROW(load_config("", {"data.format=parquet"}), Error);
}

}  // namespace
}  // namespace lathe
