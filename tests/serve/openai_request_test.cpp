// The request bodies of /v1/completions and /v1/chat/completions: what is accepted, and
// that every bad field is a 400 naming it.
#include "serve/openai_request.h"

#include <gtest/gtest.h>

#include "generate/generate_test_util.h"
#include "serve/api_error.h"

namespace lathe {
namespace {

using json = nlohmann::json;

class RequestTest : public ::testing::Test {
 protected:
  const Tokenizer& tok = *gen_test::stories().tok;
  ServeLimits limits = [] {
    ServeLimits l;
    l.context = 512;
    l.max_n = 4;
    l.max_prompts = 3;
    l.max_logprobs = 5;
    l.max_sequences = 8;
    return l;
  }();

  CompletionRequest completion(const std::string& body) {
    return parse_completion_request(json::parse(body), tok, limits);
  }
  // The ApiError a completions body gets (status, param).
  std::pair<int, std::string> completion_error(const std::string& body) {
    try {
      completion(body);
    } catch (const ApiError& e) {
      return {e.status, e.param};
    }
    return {200, ""};
  }
  std::pair<int, std::string> chat_error(const std::string& body) {
    try {
      parse_chat_request(json::parse(body), limits);
    } catch (const ApiError& e) {
      return {e.status, e.param};
    }
    return {200, ""};
  }
};

TEST_F(RequestTest, PromptForms) {
  // A text is encoded with BOS, as HF's tokenizer(text) does for Llama.
  CompletionRequest r = completion(R"({"prompt": "Once upon a time"})");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], tok.encode("Once upon a time", true));
  EXPECT_EQ(r.prompts[0][0], tok.bos_id());
  // Token ids are taken as given (no BOS added).
  r = completion(R"({"prompt": [5, 6, 7]})");
  EXPECT_EQ(r.prompts, (std::vector<std::vector<int32_t>>{{5, 6, 7}}));
  r = completion(R"({"prompt": [[5], [6, 7]]})");
  EXPECT_EQ(r.prompts, (std::vector<std::vector<int32_t>>{{5}, {6, 7}}));
  r = completion(R"({"prompt": ["a", "b"]})");
  EXPECT_EQ(r.prompts.size(), 2u);
  // Defaults: OpenAI's temperature 1, max_tokens from the endpoint, no logprobs.
  EXPECT_FLOAT_EQ(r.temperature, 1.0f);
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_EQ(r.logprobs, -1);
}

TEST_F(RequestTest, FieldsAreRead) {
  const CompletionRequest r = completion(
      R"({"prompt": "x", "max_tokens": 0, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
          "seed": 7, "n": 2, "stop": ["\n", ""], "echo": true, "logprobs": 3, "stream": true,
          "stream_options": {"include_usage": true}, "model": "m", "user": "u"})");
  EXPECT_EQ(r.max_tokens, 0);
  EXPECT_FLOAT_EQ(r.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.top_p, 0.9f);
  EXPECT_EQ(r.top_k, 40);
  EXPECT_EQ(r.seed, 7u);
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});  // empty stop strings are dropped
  EXPECT_TRUE(r.echo && r.stream && r.include_usage);
  EXPECT_EQ(r.logprobs, 3);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(completion(R"({"prompt": "x", "max_tokens": 16.0})").max_tokens, 16);
}

TEST_F(RequestTest, BadFieldsAreNamed) {
  const std::pair<int, std::string> cases[] = {{400, "prompt"},
                                               {400, "max_tokens"},
                                               {400, "max_tokens"},
                                               {400, "temperature"},
                                               {400, "top_p"},
                                               {400, "n"},
                                               {400, "n"},
                                               {400, "logprobs"},
                                               {400, "stop"},
                                               {400, "stream"},
                                               {400, "echo"},
                                               {400, "prompt"},
                                               {400, "prompt"},
                                               {400, "prompt"},
                                               {400, "frobnicate"},
                                               {400, "suffix"},
                                               {400, "logit_bias"},
                                               {400, "stream_options"},
                                               {400, "seed"},
                                               {400, "prompt"},
                                               {400, "model"},
                                               {400, "top_k"},
                                               {400, "presence_penalty"}};
  const char* bodies[] = {R"({})",
                          R"({"prompt": "x", "max_tokens": -1})",
                          R"({"prompt": "x", "max_tokens": "16"})",
                          R"({"prompt": "x", "temperature": -0.5})",
                          R"({"prompt": "x", "top_p": 0})",
                          R"({"prompt": "x", "n": 0})",
                          R"({"prompt": "x", "n": 5})",
                          R"({"prompt": "x", "logprobs": 6})",
                          R"({"prompt": "x", "stop": [1]})",
                          R"({"prompt": "x", "stream": "yes"})",
                          R"({"prompt": "x", "echo": 1})",
                          R"({"prompt": [1, 99999]})",
                          R"({"prompt": []})",
                          R"({"prompt": ["a", "b", "c", "d"]})",
                          R"({"prompt": "x", "frobnicate": 1})",
                          R"({"prompt": "x", "suffix": "end"})",
                          R"({"prompt": "x", "logit_bias": {"5": 10}})",
                          R"({"prompt": "x", "stream_options": {"include_usage": true}})",
                          R"({"prompt": "x", "seed": 1.5})",
                          R"({"prompt": {"text": "x"}})",
                          R"({"prompt": "x", "model": 3})",
                          R"({"prompt": "x", "top_k": -2})",
                          R"({"prompt": "x", "presence_penalty": 3})"};
  static_assert(std::size(cases) == std::size(bodies));
  for (size_t i = 0; i < std::size(bodies); ++i)
    EXPECT_EQ(completion_error(bodies[i]), cases[i]) << bodies[i];
  // More sequences than the server runs at once: n names the problem.
  EXPECT_EQ(completion_error(R"({"prompt": ["a", "b", "c"], "n": 3})"),
            (std::pair<int, std::string>{400, "n"}));
}

TEST_F(RequestTest, Chat) {
  const ChatRequest r =
      parse_chat_request(json::parse(R"({"messages": [{"role": "developer", "content": "be brief"},
                                   {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                      "logprobs": true, "top_logprobs": 2, "max_completion_tokens": 9})"),
                         limits);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "Hi");
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 2);
  EXPECT_EQ(r.max_tokens, 9);
  using P = std::pair<int, std::string>;
  EXPECT_EQ(chat_error(R"({})"), P(400, "messages"));
  EXPECT_EQ(chat_error(R"({"messages": []})"), P(400, "messages"));
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "robot", "content": "x"}]})"),
            P(400, "messages[0].role"));
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user"}]})"), P(400, "messages[0].content"));
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": 5}]})"),
            P(400, "messages[0].content"));
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "assistant", "content": "x"}]})"),
            P(400, "messages"));
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})"),
            P(400, "top_logprobs"));
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "tools": [{}]})"),
            P(400, "tools"));
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "echo": true})"),
            P(400, "echo"));
}

TEST_F(RequestTest, BodyMustBeAJsonObject) {
  for (const char* body : {"", "not json", "[1, 2]", "\"text\"", "{\"prompt\": "}) {
    try {
      parse_json_body(body);
      ADD_FAILURE() << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << body;
      EXPECT_EQ(e.body()["error"]["type"], "invalid_request_error");
    }
  }
}

TEST_F(RequestTest, PromptLengthAndMaxTokens) {
  SamplingFields r;
  EXPECT_EQ(checked_max_tokens(r, 10, 16, limits, "prompt"), 16);
  // max_tokens past the context is capped to what is left.
  r.max_tokens = 500;
  EXPECT_EQ(checked_max_tokens(r, 100, 16, limits, "prompt"), 412);
  // A prompt that fills the context has no room for a new token...
  try {
    checked_max_tokens(r, 512, 16, limits, "prompt");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, "prompt");
    EXPECT_NE(std::string(e.what()).find("512"), std::string::npos);
  }
  // ...but may still be scored (max_tokens 0, echo with logprobs).
  r.max_tokens = 0;
  EXPECT_EQ(checked_max_tokens(r, 512, 16, limits, "prompt"), 0);
}

}  // namespace
}  // namespace lathe
