// Published token-id vectors: llama.cpp's test-tokenizer-0 files (Llama 2 SPM and Llama 3
// BPE), the llama2.c test.c prompts, and Meta's Llama 3 tokenizer unit test. Every vector
// must match exactly, for each way of loading the tokenizer.
#include <gtest/gtest.h>

#include <sstream>

#include "core/json.h"
#include "tokenizer/tokenizer_test_util.h"

namespace lathe {
namespace {

using tok_test::fixtures;
using tok_test::read_file;

struct Vector {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: strings separated by "\n__ggml_vocab_test__\n" (the last element is empty);
// .out: one line of space-separated ids per string, without BOS.
std::vector<Vector> llama_cpp_vectors(const std::string& name) {
  const std::string base = fixtures() + "/llama.cpp/" + name;
  const std::string inp = read_file(base + ".inp"), out = read_file(base + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0;;) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) break;
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<Vector> v;
  std::istringstream lines(out);
  std::string line;
  for (const std::string& t : texts) {
    std::getline(lines, line);
    Vector x{t, {}};
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) x.ids.push_back(id);
    v.push_back(std::move(x));
  }
  return v;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

void expect_vectors(const Tokenizer& t, const std::vector<Vector>& vectors, bool round_trip) {
  int matched = 0;
  for (const Vector& v : vectors) {
    const std::vector<int32_t> got = t.encode(v.text, /*add_special=*/false);
    EXPECT_EQ(show(got), show(v.ids)) << "text: " << nlohmann::json(v.text).dump();
    matched += got == v.ids;
    if (round_trip) {
      EXPECT_EQ(t.decode(got), v.text);
    }
  }
  std::cout << "[ reached ] " << matched << "/" << vectors.size() << " vectors identical\n";
}

TEST(TokenizerVectors, LlamaCppSpmWithSentencePieceModel) {
  auto v = llama_cpp_vectors("ggml-vocab-llama-spm.gguf");
  ASSERT_EQ(v.size(), 46u);
  LATHE_TOKENIZER_OR_SKIP(t, "llama2-model");
  expect_vectors(*t, v, true);
}

TEST(TokenizerVectors, LlamaCppSpmWithTokenizerJson) {
  auto v = llama_cpp_vectors("ggml-vocab-llama-spm.gguf");
  LATHE_TOKENIZER_OR_SKIP(t, "llama2-json");
  expect_vectors(*t, v, true);
}

TEST(TokenizerVectors, LlamaCppBpeWithTokenizerJson) {
  auto v = llama_cpp_vectors("ggml-vocab-llama-bpe.gguf");
  ASSERT_EQ(v.size(), 46u);
  LATHE_TOKENIZER_OR_SKIP(t, "llama3-json");
  expect_vectors(*t, v, true);
}

TEST(TokenizerVectors, LlamaCppBpeWithTiktokenModel) {
  auto v = llama_cpp_vectors("ggml-vocab-llama-bpe.gguf");
  LATHE_TOKENIZER_OR_SKIP(t, "llama3-model");
  expect_vectors(*t, v, true);
}

// llama2.c test.c: ids include BOS, which the Llama 2 config adds.
void expect_llama2c(const Tokenizer& t) {
  const auto j = nlohmann::json::parse(read_file(fixtures() + "/llama2_encode_vectors.json"));
  ASSERT_EQ(j["cases"].size(), 5u);
  ASSERT_TRUE(t.adds_bos());
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto got = t.encode(text);
    EXPECT_EQ(show(got), show(want)) << text;
    EXPECT_EQ(t.decode(got, /*skip_special=*/true), text);
  }
}

TEST(TokenizerVectors, Llama2cPromptsWithSentencePieceModel) {
  LATHE_TOKENIZER_OR_SKIP(t, "llama2-model");
  expect_llama2c(*t);
}

TEST(TokenizerVectors, Llama2cPromptsWithTokenizerJson) {
  LATHE_TOKENIZER_OR_SKIP(t, "llama2-json");
  expect_llama2c(*t);
}

// Meta's test_tokenizer.py: encode with bos/eos flags, decode with specials kept, and the
// chat header of encode_message, whose special tokens appear literally in the text.
void expect_meta_llama3(const Tokenizer& t) {
  const auto j = nlohmann::json::parse(read_file(fixtures() + "/llama3_encode_vectors.json"));
  ASSERT_EQ(t.bos_id(), 128000);
  ASSERT_EQ(t.vocab_size(), 128256);
  int cases = 0;
  for (const auto& c : j["cases"]) {
    if (c.contains("text")) {
      std::vector<int32_t> got;
      if (c["bos"].get<bool>()) got.push_back(t.bos_id());
      t.encode_into(c["text"].get<std::string>(), false, got);
      if (c["eos"].get<bool>()) got.push_back(*t.find("<|end_of_text|>"));
      EXPECT_EQ(show(got), show(c["ids"].get<std::vector<int32_t>>())) << c.dump();
    } else if (c.contains("decode_ids")) {
      EXPECT_EQ(t.decode(c["decode_ids"].get<std::vector<int32_t>>()),
                c["decoded"].get<std::string>());
    } else if (c.contains("chat_message")) {
      const auto& msg = c["chat_message"];
      const std::string text = "<|start_header_id|>" + msg["role"].get<std::string>() +
                               "<|end_header_id|>\n\n" + msg["content"].get<std::string>() +
                               "<|eot_id|>";
      EXPECT_EQ(show(t.encode(text, false)), show(c["ids"].get<std::vector<int32_t>>()));
    }
    ++cases;
  }
  EXPECT_EQ(cases, 4);
}

TEST(TokenizerVectors, MetaLlama3WithTokenizerJson) {
  LATHE_TOKENIZER_OR_SKIP(t, "llama3-json");
  expect_meta_llama3(*t);
  // This tokenizer.json's post_processor is ByteLevel only: HF adds no BOS (PROVENANCE).
  EXPECT_FALSE(t->adds_bos());
}

TEST(TokenizerVectors, MetaLlama3WithTiktokenModel) {
  LATHE_TOKENIZER_OR_SKIP(t, "llama3-model");
  expect_meta_llama3(*t);
  // A bare tokenizer.model follows Meta's encode(bos=True).
  EXPECT_TRUE(t->adds_bos());
  EXPECT_EQ(t->encode("This is a test sentence.").front(), 128000);
}

}  // namespace
}  // namespace lathe
