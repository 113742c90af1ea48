// The HTTP server's life cycle with Debian's cpp-httplib client: 503 while the model loads,
// 200 once set, the API key on every endpoint but /health, 503 while draining.
#include "serve/server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "core/json.h"
#include "generate/chat_prompt.h"
#include "generate/generate_test_util.h"
#include "serve/scheduler.h"

namespace lathe {
namespace {

using json = nlohmann::json;

TEST(ApiServer, LoadingReadyAndDraining) {
  ServeOptions o;
  o.port = 0;
  o.api_key = "k";
  o.limits.context = 512;
  o.limits.max_sequences = 8;
  ApiServer server(o);
  httplib::Client c("127.0.0.1", server.port());
  c.set_bearer_token_auth("k");

  // Loading: /health and generation say so with 503.
  auto r = c.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["status"], "loading");
  r = c.Post("/v1/completions", R"({"prompt": "x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_FALSE(json::parse(r->body)["error"]["message"].get<std::string>().empty());

  gen_test::LoadedModel& m = gen_test::stories();
  SchedulerOptions so;
  so.slots = 4;
  so.max_waiting = 4;
  Scheduler sched(*m.model, *m.be, nullptr, so, {m.tok->eos_id()});
  ServedModel served;
  served.name = "stories260K";
  served.tokenizer = m.tok.get();
  served.scheduler = &sched;
  server.set_model(served);

  r = c.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Post("/v1/completions",
             R"({"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0})",
             "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");

  // The key: 401 without it, except /health.
  httplib::Client anonymous("127.0.0.1", server.port());
  r = anonymous.Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "invalid_api_key");
  r = anonymous.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  // Draining: nothing in flight, so it returns at once; new generation gets 503.
  EXPECT_EQ(server.drain(5), 0);
  r = c.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["status"], "draining");
  r = c.Post("/v1/completions", R"({"prompt": "x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  sched.shutdown();
  server.stop();
}

}  // namespace
}  // namespace lathe
