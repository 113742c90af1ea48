// Tokenizer behaviour beyond the published vectors: the bundled stories260K, special
// tokens in text, BOS/EOS policy from the config, decoding, adding special tokens and
// saving/loading, and errors that name the file.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/tokenizer_test_util.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

using tok_test::fixtures;
using Ids = std::vector<int32_t>;

std::string temp_dir(const std::string& name) {
  const fs::path d =
      fs::temp_directory_path() / ("lathe_tok_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// The message of the lathe::Error that f throws ("" if none).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Tokenizer, Stories260KOnceUponATime) {
  auto t = Tokenizer::load(std::string(LATHE_SOURCE_DIR) + "/examples/stories260K");
  EXPECT_EQ(t->vocab_size(), 512);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_EQ(t->pad_id(), -1);  // pad_token null
  EXPECT_TRUE(t->adds_bos());
  EXPECT_FALSE(t->adds_eos());
  // SentencePiece semantics: "▁" prepended, spaces as "▁", merges by piece score (the same
  // ids come from llama2.c's encode() on tok512.bin and from tools/pretokenize.py).
  const Ids ids = t->encode("Once upon a time");
  EXPECT_EQ(ids, (Ids{1, 403, 407, 261, 378}));
  EXPECT_EQ(t->piece(403), "\xE2\x96\x81Once");
  EXPECT_EQ(t->decode(ids), "<s> Once upon a time");  // HF keeps specials unless skipped
  EXPECT_EQ(t->decode(ids, true), "Once upon a time");
  EXPECT_EQ(t->encode("", true), (Ids{1}));
  EXPECT_EQ(t->encode("", false), Ids{});
  // A character outside the 512 pieces (漢) falls back to bytes (<0xNN> = 3 + byte).
  EXPECT_EQ(t->encode("\xE6\xBC\xA2", false), (Ids{410, 3 + 0xE6, 3 + 0xBC, 3 + 0xA2}));
  EXPECT_EQ(t->decode({410, 3 + 0xE6, 3 + 0xBC, 3 + 0xA2}), "\xE6\xBC\xA2");
}

TEST(Tokenizer, SpecialTokensInTextAreMatched) {
  LATHE_TOKENIZER_OR_SKIP(t, "llama2-model");
  // HF (legacy Llama): text around an added token is normalized on its own, so the
  // segment after "<s>" gets its own "▁" prefix.
  EXPECT_EQ(t->encode("Hello <s> world", false), (Ids{15043, 29871, 1, 29871, 3186}));
  EXPECT_EQ(t->encode("</s>", false), (Ids{2}));
  EXPECT_EQ(t->encode("<s", false), (Ids{529, 29879}));  // not a token
  EXPECT_EQ(t->decode({1, 15043, 2}, true), "Hello");
  EXPECT_TRUE(t->is_special(1));
  EXPECT_FALSE(t->is_special(15043));
  EXPECT_EQ(t->find("<0x0A>"), 13);
  EXPECT_EQ(t->find("\xE2\x96\x81Hello"), 15043);
  EXPECT_EQ(t->find("nope-not-a-token"), std::nullopt);
  EXPECT_EQ(t->pad_id(), 0);  // special_tokens_map.json: pad <unk>
}

TEST(Tokenizer, DecodeInvalidBytesAsReplacementCharacters) {
  LATHE_TOKENIZER_OR_SKIP(t, "llama2-model");
  // HF ByteFallback: a run of byte tokens that is not UTF-8 becomes one U+FFFD per byte.
  EXPECT_EQ(t->decode({3 + 0xE2, 3 + 0x82}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(t->decode({3 + 0xE2, 3 + 0x82, 3 + 0xAC}), "\xE2\x82\xAC");  // €
  EXPECT_THROW(t->decode({32000}), Error);
  EXPECT_THROW(t->decode({-1}), Error);
}

TEST(Tokenizer, Llama3SpecialsAndBytes) {
  LATHE_TOKENIZER_OR_SKIP(t, "llama3-json");
  EXPECT_EQ(t->eos_id(), 128001);
  EXPECT_EQ(t->pad_id(), 128001);
  EXPECT_EQ(t->find("<|eot_id|>"), 128009);
  EXPECT_EQ(t->piece(2028), "This");
  EXPECT_EQ(t->piece(1296), "\xC4\xA0test");  // Ġtest
  EXPECT_EQ(t->find("\xC4\xA0test"), 1296);
  EXPECT_EQ(t->encode("a<|eot_id|>b", false), (Ids{64, 128009, 65}));
  EXPECT_EQ(t->decode({64, 128009, 65}, true), "ab");
  // Half of a UTF-8 character decodes to U+FFFD (HF's from_utf8_lossy).
  const Ids euro = t->encode("\xE2\x82\xAC", false);
  Ids half = euro;
  if (half.size() == 1) half = {t->find("\xC3\xA2").value()};
  EXPECT_NE(t->decode(half).find("\xEF\xBF\xBD"), std::string::npos);
}

TEST(Tokenizer, ConfigDecidesBosAndEos) {
  const std::string dir = temp_dir("cfg");
  fs::copy_file(std::string(LATHE_SOURCE_DIR) + "/examples/stories260K/tokenizer.json",
                dir + "/tokenizer.json");
  write(dir + "/tokenizer_config.json",
        R"({"add_bos_token": false, "add_eos_token": true, "eos_token": {"content": "</s>"},
            "pad_token": "<unk>"})");
  auto t = Tokenizer::load(dir);
  EXPECT_FALSE(t->adds_bos());
  EXPECT_TRUE(t->adds_eos());
  EXPECT_EQ(t->pad_id(), 0);
  EXPECT_EQ(t->encode("Once"), (Ids{403, 2}));
  // Without a config, tokenizer.json's TemplateProcessing decides: BOS only.
  fs::remove(dir + "/tokenizer_config.json");
  auto plain = Tokenizer::load(dir);
  EXPECT_TRUE(plain->adds_bos());
  EXPECT_FALSE(plain->adds_eos());
  EXPECT_EQ(plain->bos_id(), 1);
  EXPECT_EQ(plain->eos_id(), -1);  // nothing names it
  fs::remove_all(dir);
}

// TemplateProcessing entries that name no token: a SpecialToken without "id", or one that
// is not an object. They add no BOS; before, the loader looked "id" up unchecked and read
// past the end of the map (undefined behaviour the fuzzer found).
TEST(Tokenizer, TemplateEntriesWithoutAnIdAddNothing) {
  const std::string src = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K/tokenizer.json";
  auto j = nlohmann::json::parse(tok_test::read_file(src));
  const std::string dir = temp_dir("template");
  for (const char* single : {R"([{"SpecialToken": {"type_id": 0}}, {"Sequence": {"id": "A"}}])",
                             R"([{"SpecialToken": "<s>"}, 7])", R"([3, {"SpecialToken": {}}])"}) {
    j["post_processor"]["single"] = nlohmann::json::parse(single);
    write(dir + "/tokenizer.json", j.dump());
    auto t = Tokenizer::load(dir);
    EXPECT_FALSE(t->adds_bos()) << single;
    EXPECT_FALSE(t->adds_eos()) << single;
    EXPECT_EQ(t->encode("Once"), (Ids{403})) << single;
  }
  fs::remove_all(dir);
}

// The newer HF Llama form: no normalizer, a Metaspace pre-tokenizer that prepends "▁"
// only to the start of the input ("first") and not when the text already starts with a
// space, and the Metaspace decoder.
TEST(Tokenizer, MetaspacePreTokenizerForms) {
  const std::string src = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K/tokenizer.json";
  auto j = nlohmann::json::parse(tok_test::read_file(src));
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Metaspace"},
                        {"replacement", "\xE2\x96\x81"},
                        {"prepend_scheme", "first"},
                        {"split", false}};
  j["decoder"] = {{"type", "Metaspace"},
                  {"replacement", "\xE2\x96\x81"},
                  {"prepend_scheme", "first"},
                  {"split", false}};
  const std::string dir = temp_dir("metaspace");
  write(dir + "/tokenizer.json", j.dump());
  auto first = Tokenizer::load(dir);
  auto legacy = Tokenizer::load(std::string(LATHE_SOURCE_DIR) + "/examples/stories260K");
  EXPECT_EQ(first->encode("Once upon a time", false), (Ids{403, 407, 261, 378}));
  EXPECT_EQ(first->encode(" Once", false), (Ids{403}));  // no second "▁"
  EXPECT_EQ(legacy->encode(" Once", false), (Ids{410, 403}));
  // After an added token the text is not at the start: no "▁" (legacy adds one).
  const Ids after = first->encode("x</s>Once", false);
  const Ids once_bare = first->encode("</s>Once", false);
  ASSERT_GT(after.size(), once_bare.size());
  EXPECT_EQ(Ids(after.end() - long(once_bare.size()), after.end()), once_bare);
  EXPECT_NE(once_bare[1], 403);
  EXPECT_EQ(first->decode(after), "x</s>Once");
  EXPECT_EQ(first->decode(first->encode("Once upon a time")), "<s> Once upon a time");

  // Old files: add_prefix_space instead of prepend_scheme, no "split" key (always split
  // at "▁"): per-word BPE, the same ids as the Prepend form on text that does not start
  // with a space.
  j["pre_tokenizer"] = {
      {"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"add_prefix_space", true}};
  write(dir + "/tokenizer.json", j.dump());
  auto old = Tokenizer::load(dir);
  for (const char* text : {"Once upon a time", "a  b   c", "x<s>y"}) {
    EXPECT_EQ(old->encode(text), legacy->encode(text)) << text;
  }
  fs::remove_all(dir);
}

// Adds tokens, saves, loads the saved folder, and checks the two agree on `texts`.
void expect_save_round_trip(Tokenizer& t, const std::vector<std::string>& texts,
                            const std::string& name) {
  const int32_t before = t.vocab_size();
  const Ids ids = t.add_special_tokens({"<|im_start|>", "<|im_end|>", "<|im_start|>"});
  EXPECT_EQ(ids, (Ids{before, before + 1, before}));
  EXPECT_EQ(t.vocab_size(), before + 2);
  EXPECT_EQ(t.add_special_tokens({"<|im_end|>"}), (Ids{before + 1}));  // already there
  const std::string chat = "<|im_start|>user\nHi there<|im_end|>";
  const Ids chat_ids = t.encode(chat, false);
  EXPECT_EQ(chat_ids.front(), before);
  EXPECT_EQ(chat_ids.back(), before + 1);
  // HF's Llama (legacy) normalizes the text after an added token on its own, "▁" and
  // all, so SentencePiece decodes a space there; byte-level decodes exactly.
  EXPECT_EQ(t.decode(chat_ids), t.byte_level() ? chat : "<|im_start|> user\nHi there<|im_end|>");
  EXPECT_EQ(t.decode(chat_ids, true).find("im_start"), std::string::npos);

  const std::string dir = temp_dir("save_" + name);
  t.save(dir);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  }
  const auto config = nlohmann::json::parse(tok_test::read_file(dir + "/tokenizer_config.json"));
  EXPECT_EQ(config["added_tokens_decoder"][std::to_string(before)]["content"], "<|im_start|>");
  EXPECT_EQ(config["added_tokens_decoder"][std::to_string(before)]["special"], true);
  EXPECT_EQ(config["additional_special_tokens"].size(), 2u);
  auto back = Tokenizer::load(dir);
  EXPECT_EQ(back->vocab_size(), t.vocab_size());
  EXPECT_EQ(back->bos_id(), t.bos_id());
  EXPECT_EQ(back->eos_id(), t.eos_id());
  EXPECT_EQ(back->pad_id(), t.pad_id());
  EXPECT_EQ(back->adds_bos(), t.adds_bos());
  EXPECT_EQ(back->adds_eos(), t.adds_eos());
  EXPECT_EQ(back->encode(chat), t.encode(chat));
  for (const std::string& s : texts) {
    EXPECT_EQ(back->encode(s), t.encode(s)) << s;
    EXPECT_EQ(back->decode(t.encode(s)), t.decode(t.encode(s))) << s;
  }
  fs::remove_all(dir);
}

const std::vector<std::string> kTexts = {"Once upon a time",
                                         "  leading spaces",
                                         "Hello, y'all! How are you \xF0\x9F\x98\x81 ?",
                                         "\xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8"
                                         "apple\xE5\xB7\xA5\xE4\xBD\x9C"
                                         "1314151",
                                         "tabs\tand\nnewlines\n\n",
                                         "Caf\xC3\xA9 \xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE 12345",
                                         ""};

TEST(Tokenizer, AddSpecialTokensSaveLoadStories260K) {
  auto t = Tokenizer::load(std::string(LATHE_SOURCE_DIR) + "/examples/stories260K");
  expect_save_round_trip(*t, kTexts, "stories");
}

TEST(Tokenizer, AddSpecialTokensSaveLoadFromSentencePieceModel) {
  // tokenizer.model in, tokenizer.json out: the score-ranked merges are written as an HF
  // merge list, which must give the same ids.
  auto t = Tokenizer::load(fixtures() + "/llama2");
  expect_save_round_trip(*t, kTexts, "spm");
}

TEST(Tokenizer, AddSpecialTokensSaveLoadLlama3) {
  LATHE_TOKENIZER_OR_SKIP(cached, "llama3-json");
  auto t = Tokenizer::load(tok_test::shared_data() + "/tokenizers/llama3");
  expect_save_round_trip(*t, kTexts, "llama3");
}

TEST(Tokenizer, ExistingVocabularyTokenBecomesSpecial) {
  auto t = Tokenizer::load(std::string(LATHE_SOURCE_DIR) + "/examples/stories260K");
  EXPECT_EQ(t->encode("Once", false), (Ids{403}));
  const int32_t once = t->find("\xE2\x96\x81Once").value();
  EXPECT_EQ(t->add_special_tokens({"\xE2\x96\x81Once"}), (Ids{once}));
  EXPECT_EQ(t->vocab_size(), 512);
  EXPECT_TRUE(t->is_special(once));
}

TEST(Tokenizer, ErrorsNameTheFile) {
  EXPECT_NE(error_of([] { Tokenizer::load("/nonexistent/folder"); }).find("/nonexistent/folder"),
            std::string::npos);
  const std::string dir = temp_dir("errors");
  EXPECT_NE(error_of([&] { Tokenizer::load(dir); }).find("no tokenizer.json or tokenizer.model"),
            std::string::npos);

  write(dir + "/tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}");
  std::string e = error_of([&] { Tokenizer::load(dir); });
  EXPECT_NE(e.find("tokenizer.json: not valid JSON"), std::string::npos) << e;

  write(dir + "/tokenizer.json", R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})");
  e = error_of([&] { Tokenizer::load(dir); });
  EXPECT_NE(e.find("model.type \"Unigram\" is not supported"), std::string::npos) << e;

  write(dir + "/tokenizer.json",
        R"({"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}})");
  e = error_of([&] { Tokenizer::load(dir); });
  EXPECT_NE(e.find("merge 0"), std::string::npos) << e;
  EXPECT_NE(e.find("c is not in the vocabulary"), std::string::npos) << e;

  write(dir + "/tokenizer.json",
        R"({"normalizer": {"type": "NFKC"}, "model": {"type": "BPE", "vocab": {"a": 0}}})");
  e = error_of([&] { Tokenizer::load(dir); });
  EXPECT_NE(e.find("normalizer"), std::string::npos) << e;

  fs::remove(dir + "/tokenizer.json");
  const std::string model = tok_test::read_file(fixtures() + "/llama2/tokenizer.model");
  write(dir + "/tokenizer.model", model.substr(0, model.size() / 2));
  e = error_of([&] { Tokenizer::load(dir); });
  EXPECT_NE(e.find(dir + "/tokenizer.model: truncated protobuf"), std::string::npos) << e;

  write(dir + "/tokenizer.model", model);
  write(dir + "/tokenizer_config.json", R"({"bos_token": "<start>"})");
  e = error_of([&] { Tokenizer::load(dir); });
  EXPECT_NE(e.find("tokenizer_config.json: bos_token \"<start>\" is not a token"),
            std::string::npos)
      << e;
  write(dir + "/tokenizer_config.json", R"({"add_bos_token": "yes"})");
  e = error_of([&] { Tokenizer::load(dir); });
  EXPECT_NE(e.find("add_bos_token must be true or false"), std::string::npos) << e;

  fs::remove(dir + "/tokenizer_config.json");
  write(dir + "/tokenizer.model", "not base64!\n");
  e = error_of([&] { Tokenizer::load(dir); });
  EXPECT_NE(e.find("tokenizer.model"), std::string::npos) << e;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lathe
