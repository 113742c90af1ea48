// The formats over the real Llama 2 tokenizer (tests/data/tokenizer/llama2): chat rows give
// exactly the ids of Meta's format string encoded whole, and prompt/response rows train on
// exactly the response. Built only once src/tokenizer exists.
#if __has_include("tokenizer/tokenizer.h")
#include <gtest/gtest.h>

#include <filesystem>

#include "data/formats.h"
#include "tokenizer/tokenizer.h"

#ifndef LATHE_SOURCE_DIR
#define LATHE_SOURCE_DIR "."
#endif

namespace lathe {
namespace {

std::string source(const std::string& rel) { return std::string(LATHE_SOURCE_DIR) + "/" + rel; }

class FormatsTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string folder = source("tests/data/tokenizer/llama2");
    if (!std::filesystem::exists(folder + "/tokenizer.model")) GTEST_SKIP() << "no " << folder;
    tok_ = Tokenizer::load(folder);
    enc_ = make_tokenizer_encoder(*tok_);
  }

  std::vector<TokenRow> load(const std::string& format, const std::string& fixture) {
    DataSpec spec;
    spec.format = format;
    spec.path = source("tests/data/fixtures/" + fixture);
    spec.seq_len = 4096;
    return load_dataset(spec, enc_.get(), nullptr);
  }

  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<TextEncoder> enc_;
};

TEST_F(FormatsTokenizerTest, Llama2ChatEqualsMetasFormatEncodedWhole) {
  EXPECT_FALSE(enc_->special("<|start_header_id|>"));  // so the Llama 2 format is chosen
  auto rows = load("chat", "chat_rows.jsonl");
  const char* meta[] = {
      "<s>[INST] <<SYS>>\nYou are a concise assistant.\n<</SYS>>\n\nWhat is 2 + 3? [/INST] 5 </s>",
      "<s>[INST] Say hi. [/INST] Hi! </s><s>[INST] Now in Spanish. [/INST] \xC2\xA1Hola! </s>",
      "<s>[INST] Spaces around. [/INST] Trimmed. </s>"};
  ASSERT_EQ(rows.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(rows[i].input_ids, tok_->encode(meta[i], false)) << i;
  // Trained: each reply and its </s>.
  std::vector<int32_t> trained;
  for (size_t t = 0; t < rows[1].labels.size(); ++t)
    if (rows[1].labels[t] != -100) trained.push_back(rows[1].labels[t]);
  EXPECT_EQ(trained.size(),
            tok_->encode("Hi! ", false).size() + tok_->encode("\xC2\xA1Hola! ", false).size() + 2);
  EXPECT_EQ(tok_->decode(trained), "Hi! </s> \xC2\xA1Hola! </s>");
}

TEST_F(FormatsTokenizerTest, Llama2PromptAndResponseAreEncodedApart) {
  auto rows = load("samsum", "samsum_validation_rows.csv");
  ASSERT_EQ(rows.size(), 4u);
  const std::string prompt =
      "Summarize this dialog:\nAiden: Are you free now?\nSilvia: 5 mins please\nAiden: k\n---\n"
      "Summary:\n";
  const std::string summary = "Silvia will be free in 5 minutes.";
  std::vector<int32_t> p = tok_->encode(prompt, false), r = tok_->encode(summary, false);
  std::vector<int32_t> ids = {tok_->bos_id()};
  ids.insert(ids.end(), p.begin(), p.end());
  ids.insert(ids.end(), r.begin(), r.end());
  ids.push_back(tok_->eos_id());
  EXPECT_EQ(rows[0].input_ids, ids);  // as llama-recipes' samsum_dataset.py builds it
  std::vector<int32_t> labels(1 + p.size(), -100);
  labels.insert(labels.end(), r.begin(), r.end());
  labels.push_back(tok_->eos_id());
  EXPECT_EQ(rows[0].labels, labels);
}

}  // namespace
}  // namespace lathe
#endif
