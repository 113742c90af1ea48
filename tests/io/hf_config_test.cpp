#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "core/json.h"
#include "model/llama_config.h"

namespace lathe {
namespace {

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a lathe::Error";
  return "";
}

// /work/shared/data/models/stories260K/hf/config.json, verbatim.
const char* kStories260K = R"({
  "architectures": [
    "LlamaForCausalLM"
  ],
  "model_type": "llama",
  "hidden_size": 64,
  "intermediate_size": 172,
  "num_hidden_layers": 5,
  "num_attention_heads": 8,
  "num_key_value_heads": 4,
  "head_dim": 8,
  "vocab_size": 512,
  "max_position_embeddings": 512,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "rope_scaling": null,
  "hidden_act": "silu",
  "tie_word_embeddings": true,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "attention_bias": false,
  "mlp_bias": false,
  "initializer_range": 0.02,
  "pretraining_tp": 1,
  "use_cache": true,
  "torch_dtype": "float32"
})";

// Shaped like Llama-3.2-1B's config.json.
const char* kLlama32 = R"({
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "vocab_size": 128256
})";

// kStories260K with `key` replaced (or removed when value is empty).
std::string stories_with(const std::string& key, const std::string& value) {
  auto j = nlohmann::json::parse(kStories260K);
  if (value.empty()) {
    j.erase(key);
  } else {
    j[key] = nlohmann::json::parse(value);
  }
  return j.dump();
}

LlamaConfig parse(const std::string& text) { return llama_config_from_json_text(text, "cfg.json"); }

void expect_same(const LlamaConfig& a, const LlamaConfig& b) {
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position_embeddings,
            b.rope_scaling.original_max_position_embeddings);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_id, b.eos_token_id);
}

TEST(HfConfig, ParsesStories260K) {
  LlamaConfig c = parse(kStories260K);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, "");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_EQ(c.torch_dtype, "float32");
  EXPECT_EQ(c.q_dim(), 64);
  EXPECT_EQ(c.kv_dim(), 32);
}

TEST(HfConfig, ParsesLlama3RopeScaling) {
  LlamaConfig c = parse(kLlama32);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_id, 128001);  // first of the list
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(HfConfig, LegacyTypeKeyAndDefaultRope) {
  auto j = nlohmann::json::parse(kLlama32);
  auto& rs = j["rope_scaling"];
  rs["type"] = rs["rope_type"];
  rs.erase("rope_type");
  EXPECT_EQ(parse(j.dump()).rope_scaling.type, "llama3");
  EXPECT_EQ(parse(stories_with("rope_scaling", R"({"rope_type": "default"})")).rope_scaling.type,
            "");
}

TEST(HfConfig, Defaults) {
  LlamaConfig c = parse(R"({"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2,
                            "num_attention_heads": 6, "vocab_size": 100, "head_dim": null})");
  EXPECT_EQ(c.num_key_value_heads, 6);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_EQ(c.rope_scaling.type, "");
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_EQ(c.torch_dtype, "float32");
}

TEST(HfConfig, NullTokenIds) {
  LlamaConfig c = parse(stories_with("bos_token_id", "null"));
  EXPECT_EQ(c.bos_token_id, -1);
  auto out = nlohmann::json::parse(llama_config_to_json_text(c, "float32"));
  EXPECT_TRUE(out["bos_token_id"].is_null());
  EXPECT_EQ(parse(stories_with("eos_token_id", "[7, 8]")).eos_token_id, 7);
}

TEST(HfConfig, ReadsFile) {
  std::string p = ::testing::TempDir() + "lathe_cfg_" + std::to_string(getpid()) + ".json";
  {
    std::ofstream out(p);
    out << kStories260K;
  }
  EXPECT_EQ(llama_config_from_json_file(p).hidden_size, 64);
  std::filesystem::remove(p);
  EXPECT_EQ(error_of([&] { llama_config_from_json_file(p); }),
            "cannot open " + p + ": No such file or directory");
}

TEST(HfConfig, MissingRequiredKey) {
  EXPECT_EQ(error_of([] { parse(stories_with("hidden_size", "")); }),
            "cfg.json: missing required key 'hidden_size'");
  EXPECT_EQ(error_of([] { parse(stories_with("vocab_size", "")); }),
            "cfg.json: missing required key 'vocab_size'");
}

TEST(HfConfig, WrongTypes) {
  std::string msg = error_of([] { parse(stories_with("hidden_size", "\"64\"")); });
  EXPECT_TRUE(Contains(msg, "cfg.json: key 'hidden_size' must be an integer, got string"));
  EXPECT_TRUE(Contains(error_of([] { parse(stories_with("num_hidden_layers", "5.5")); }),
                       "'num_hidden_layers' must be an integer"));
  EXPECT_TRUE(Contains(error_of([] { parse(stories_with("rope_theta", "\"1e4\"")); }),
                       "'rope_theta' must be a number"));
  EXPECT_TRUE(Contains(error_of([] { parse(stories_with("tie_word_embeddings", "\"yes\"")); }),
                       "'tie_word_embeddings' must be true or false"));
  EXPECT_TRUE(Contains(error_of([] { parse(stories_with("eos_token_id", "\"</s>\"")); }),
                       "'eos_token_id' must be an integer, a list of integers or null"));
  EXPECT_TRUE(Contains(error_of([] { parse(stories_with("rope_scaling", "4")); }),
                       "'rope_scaling' must be an object or null"));
  EXPECT_TRUE(Contains(error_of([] { parse("[1]"); }), "cfg.json: expected a JSON object"));
  EXPECT_TRUE(Contains(error_of([] { parse("{\"hidden_size\": "); }), "cfg.json: not valid JSON"));
}

TEST(HfConfig, InconsistentSizes) {
  EXPECT_EQ(error_of([] { parse(stories_with("num_key_value_heads", "3")); }),
            "cfg.json: num_attention_heads (8) must be a multiple of num_key_value_heads (3)");
  EXPECT_TRUE(Contains(error_of([] { parse(stories_with("hidden_size", "0")); }),
                       "'hidden_size' must be positive"));
  EXPECT_TRUE(Contains(error_of([] { parse(stories_with("num_key_value_heads", "-4")); }),
                       "'num_key_value_heads' must be positive"));
  auto j = nlohmann::json::parse(kStories260K);
  j.erase("head_dim");
  j["hidden_size"] = 60;
  EXPECT_TRUE(Contains(error_of([&] { parse(j.dump()); }),
                       "hidden_size (60) is not a multiple of num_attention_heads (8)"));
}

TEST(HfConfig, UnsupportedModelAndRope) {
  EXPECT_EQ(error_of([] { parse(stories_with("model_type", "\"mistral\"")); }),
            "cfg.json: model_type is 'mistral'; lathe supports only 'llama' models");
  EXPECT_TRUE(Contains(
      error_of([] { parse(stories_with("rope_scaling", R"({"type": "linear", "factor": 2})")); }),
      "cfg.json: rope_scaling type 'linear' is not supported"));
  EXPECT_TRUE(Contains(
      error_of([] { parse(stories_with("rope_scaling", R"({"rope_type": "yarn"})")); }), "'yarn'"));
  EXPECT_TRUE(Contains(error_of([] { parse(stories_with("rope_scaling", R"({"factor": 2})")); }),
                       "neither 'rope_type' nor 'type'"));
  auto j = nlohmann::json::parse(kLlama32);
  j["rope_scaling"].erase("factor");
  EXPECT_EQ(error_of([&] { parse(j.dump()); }),
            "cfg.json: missing required key 'rope_scaling.factor'");
  j = nlohmann::json::parse(kLlama32);
  j["rope_scaling"]["high_freq_factor"] = 1.0;
  EXPECT_TRUE(Contains(error_of([&] { parse(j.dump()); }), "must be larger than"));
}

TEST(HfConfig, WritesTransformersConfig) {
  std::string text = llama_config_to_json_text(parse(kStories260K), "bfloat16");
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["architectures"], nlohmann::json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(j["model_type"], "llama");
  EXPECT_EQ(j["torch_dtype"], "bfloat16");
  EXPECT_EQ(j["transformers_version"], "4.45.0");
  EXPECT_EQ(j["hidden_act"], "silu");
  EXPECT_EQ(j["attention_bias"], false);
  EXPECT_EQ(j["mlp_bias"], false);
  EXPECT_EQ(j["pretraining_tp"], 1);
  EXPECT_EQ(j["use_cache"], true);
  EXPECT_EQ(j["initializer_range"], 0.02);
  EXPECT_TRUE(j["rope_scaling"].is_null());
  EXPECT_TRUE(Contains(text, "{\n  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n"));
  EXPECT_TRUE(Contains(text, "\"rms_norm_eps\": 1e-05,"));
  EXPECT_TRUE(Contains(text, "\"rope_theta\": 10000.0,"));
  EXPECT_EQ(text.back(), '\n');

  auto l3 = nlohmann::json::parse(llama_config_to_json_text(parse(kLlama32), "bfloat16"));
  EXPECT_EQ(l3["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(l3["rope_scaling"]["factor"], 32.0);
  EXPECT_EQ(l3["rope_scaling"]["original_max_position_embeddings"], 8192);
}

TEST(HfConfig, RoundTrip) {
  for (const char* src : {kStories260K, kLlama32}) {
    LlamaConfig a = parse(src);
    LlamaConfig b = parse(llama_config_to_json_text(a, "float32"));
    expect_same(a, b);
    EXPECT_EQ(b.torch_dtype, "float32");
  }
}

}  // namespace
}  // namespace lathe
