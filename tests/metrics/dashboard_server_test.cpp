// The dashboard's JSON endpoints, asked over HTTP (httplib's client) about a run folder
// written here step by step: new lines arrive after the reader's offset, a rewound log is
// read again from the start, progress and ETA come from config.yaml and the line times,
// samples/*.jsonl is listed; plus the errors for a missing folder and a port in use.
#include "metrics/dashboard_server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/json.h"
#include "metrics/run_reader.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lathe {
namespace {

class Dashboard : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ =
        fs::temp_directory_path() / str_cat("lathe_dashboard_test_", getpid(), "_", info->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "run_a");
    fs::create_directories(root_ / "run_b");
    write(root_ / "run_a" / "config.yaml",
          "train:\n  lr: 0.001\n  max_steps: 10\noutput:\n  dir: a\n");
    write(root_ / "run_b" / "config.yaml",
          "train:\n  lr: 0.002\n  max_steps: 0\noutput:\n  dir: b\n");
  }
  void TearDown() override { fs::remove_all(root_); }

  static void write(const fs::path& p, const std::string& text, bool append = false) {
    std::ofstream f(p, append ? std::ios::app : std::ios::trunc);
    f << text;
  }
  // A step line as the trainer writes it, `time` seconds ago.
  static std::string step_line(int step, double loss, double time) {
    return json{{"step", step}, {"time", time}, {"loss", loss}, {"lr", 1e-3}, {"step_time_s", 0.5}}
               .dump() +
           "\n";
  }
  static double now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  json get(httplib::Client& c, const std::string& path) {
    auto r = c.Get(path.c_str());
    EXPECT_TRUE(r) << path;
    if (!r) return {};
    EXPECT_EQ(r->status, 200) << path;
    return json::parse(r->body);
  }
  DashboardOptions options() {
    DashboardOptions o;
    o.run_dirs = {(root_ / "run_a").string(), (root_ / "run_b").string()};
    o.port = 0;
    return o;
  }
  fs::path root_;
};

TEST_F(Dashboard, ServesThePageAndItsScripts) {
  DashboardServer server(options());
  httplib::Client c("127.0.0.1", server.port());
  for (const char* path : {"/", "/dashboard.js", "/dygraph.js", "/dygraph.css"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_GT(r->body.size(), 1000u) << path;
  }
  EXPECT_NE(c.Get("/")->body.find("dygraph.js"), std::string::npos);
  EXPECT_NE(c.Get("/dygraph.js")->body.find("Dygraph"), std::string::npos);
  EXPECT_EQ(c.Get("/nothing")->status, 404);
}

TEST_F(Dashboard, RunsNamesAndConfigs) {
  DashboardServer server(options());
  httplib::Client c("127.0.0.1", server.port());
  const json runs = get(c, "/api/runs")["runs"];
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0]["name"], "run_a");
  EXPECT_EQ(runs[1]["name"], "run_b");
  EXPECT_EQ(runs[0]["config_flat"]["train.lr"], "0.001");
  EXPECT_EQ(runs[1]["config_flat"]["train.lr"], "0.002");
  EXPECT_NE(runs[0]["config"].get<std::string>().find("max_steps: 10"), std::string::npos);
}

TEST_F(Dashboard, PollReturnsOnlyNewCompleteLines) {
  const fs::path log = root_ / "run_a" / "metrics.jsonl";
  const double t = now();
  write(log, step_line(1, 3.0, t - 4) + step_line(2, 2.5, t - 3));
  DashboardServer server(options());
  httplib::Client c("127.0.0.1", server.port());
  json p = get(c, "/api/poll?offset=0,0&head=,")["runs"];
  ASSERT_EQ(p.size(), 2u);
  ASSERT_EQ(p[0]["rows"].size(), 2u);
  EXPECT_EQ(p[0]["rows"][1]["loss"], 2.5);
  EXPECT_EQ(p[1]["rows"].size(), 0u);  // run_b has no log yet
  EXPECT_EQ(p[1]["status"]["state"], "starting");
  const int64_t offset = p[0]["offset"];
  const std::string head = p[0]["head"];
  EXPECT_EQ(offset, int64_t(fs::file_size(log)));

  // A line being written (no newline yet) is left for the next poll.
  const std::string third = step_line(3, 2.0, t - 2);
  write(log, third.substr(0, 20), true);
  const std::string q = str_cat("/api/poll?offset=", offset, ",0&head=", head, ",");
  p = get(c, q)["runs"];
  EXPECT_EQ(p[0]["rows"].size(), 0u);
  EXPECT_EQ(p[0]["offset"], offset);
  EXPECT_FALSE(p[0]["reset"].get<bool>());
  write(log, third.substr(20), true);
  p = get(c, q)["runs"];
  ASSERT_EQ(p[0]["rows"].size(), 1u);
  EXPECT_EQ(p[0]["rows"][0]["step"], 3);
  EXPECT_FALSE(p[0]["reset"].get<bool>());

  // Progress: step 3 of config.yaml's 10, one step a second -> ~7 s left.
  const json s = p[0]["status"];
  EXPECT_EQ(s["step"], 3);
  EXPECT_EQ(s["total"], 10);
  EXPECT_EQ(s["state"], "training");
  EXPECT_NEAR(s["seconds_per_step"].get<double>(), 1.0, 1e-6);
  EXPECT_NEAR(s["eta_s"].get<double>(), 7.0, 1.0);
}

TEST_F(Dashboard, RewoundLogIsReadAgainFromTheStart) {
  const fs::path log = root_ / "run_a" / "metrics.jsonl";
  const double t = now();
  write(log, step_line(1, 3.0, t - 3) + step_line(2, 2.5, t - 2) + step_line(3, 2.2, t - 1));
  DashboardServer server(options());
  httplib::Client c("127.0.0.1", server.port());
  json p = get(c, "/api/poll?offset=0&head=")["runs"];
  const int64_t offset = p[0]["offset"];
  const std::string head = p[0]["head"];
  // A resume cut the log back to step 1, then logged a different step 2.
  write(log, step_line(1, 3.0, t - 3) + step_line(2, 2.4, t));
  p = get(c, str_cat("/api/poll?offset=", offset, "&head=", head))["runs"];
  EXPECT_TRUE(p[0]["reset"].get<bool>());
  ASSERT_EQ(p[0]["rows"].size(), 2u);
  EXPECT_EQ(p[0]["rows"][1]["loss"], 2.4);
  // Another run's log in the folder (a new first line) at the old length or longer.
  write(log,
        step_line(1, 9.0, t) + step_line(2, 8.0, t) + step_line(3, 7.0, t) + step_line(4, 6.0, t));
  p = get(c, str_cat("/api/poll?offset=", offset, "&head=", head))["runs"];
  EXPECT_TRUE(p[0]["reset"].get<bool>());
  ASSERT_EQ(p[0]["rows"].size(), 4u);
  EXPECT_EQ(p[0]["rows"][0]["loss"], 9.0);
}

TEST_F(Dashboard, FinishedRunAndUnknownTotal) {
  const double t = now();
  write(root_ / "run_b" / "metrics.jsonl", step_line(1, 3.0, t - 2) +
                                               "{\"step\": 1, \"time\": 0, \"eval_loss\": 2.9}\n" +
                                               "not json\n" + step_line(2, 2.5, t - 1));
  DashboardServer server(options());
  httplib::Client c("127.0.0.1", server.port());
  json s = get(c, "/api/poll")["runs"][1];
  EXPECT_EQ(s["rows"].size(), 3u);     // the malformed line is skipped
  EXPECT_EQ(s["status"]["total"], 0);  // max_steps 0: unknown from the folder alone
  EXPECT_EQ(s["status"]["eta_s"], -1);
  fs::create_directories(root_ / "run_b" / "final");
  s = get(c, "/api/poll")["runs"][1]["status"];
  EXPECT_EQ(s["state"], "finished");
  EXPECT_EQ(s["total"], 2);
}

TEST_F(Dashboard, TrainerKnowsTheTotal) {
  write(root_ / "run_b" / "metrics.jsonl", step_line(1, 3.0, now()));
  DashboardOptions o;
  o.run_dirs = {(root_ / "run_b").string()};
  o.port = 0;
  o.total_steps = 40;
  DashboardServer server(o);
  httplib::Client c("127.0.0.1", server.port());
  EXPECT_EQ(get(c, "/api/poll")["runs"][0]["status"]["total"], 40);
}

TEST_F(Dashboard, PerRankArraysPassThrough) {
  write(root_ / "run_a" / "metrics.jsonl",
        "{\"step\": 1, \"loss\": 2.0, \"comm_s\": 0.1, \"rank0/comm_s\": 0.1, "
        "\"rank1/comm_s\": 0.3, \"rank_step_time_s\": [0.5, 0.6]}\n");
  DashboardServer server(options());
  httplib::Client c("127.0.0.1", server.port());
  const json row = get(c, "/api/poll")["runs"][0]["rows"][0];
  EXPECT_EQ(row["rank_step_time_s"], json::array({0.5, 0.6}));
  EXPECT_EQ(row["rank1/comm_s"], 0.3);
}

TEST_F(Dashboard, Samples) {
  fs::create_directories(root_ / "run_a" / "samples");
  write(root_ / "run_a" / "samples" / "final.jsonl",
        "{\"prompt\": \"2+2?\", \"reference\": \"4\", \"prediction\": \"4\"}\n"
        "{\"prompt\": \"3+3?\", \"reference\": \"6\", \"prediction\": \"7\"}\n");
  write(root_ / "run_a" / "samples" / "notes.txt", "not samples");
  DashboardServer server(options());
  httplib::Client c("127.0.0.1", server.port());
  const json files = get(c, "/api/samples?run=0")["files"];
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]["file"], "final.jsonl");
  EXPECT_EQ(files[0]["count"], 2);
  EXPECT_EQ(files[0]["rows"][1]["prediction"], "7");
  EXPECT_EQ(get(c, "/api/samples?run=1")["files"].size(), 0u);
  EXPECT_EQ(c.Get("/api/samples?run=7")->status, 404);
}

TEST_F(Dashboard, ReadsOnly) {
  write(root_ / "run_a" / "metrics.jsonl", step_line(1, 3.0, now()));
  auto listing = [&] {
    std::string out;
    for (const auto& e : fs::recursive_directory_iterator(root_))
      out += e.path().string() + ":" + std::to_string(e.is_regular_file() ? fs::file_size(e) : 0) +
             "\n";
    return out;
  };
  const std::string before = listing();
  {
    DashboardServer server(options());
    httplib::Client c("127.0.0.1", server.port());
    get(c, "/api/runs");
    get(c, "/api/poll");
    get(c, "/api/samples?run=0");
  }
  EXPECT_EQ(listing(), before);
}

TEST_F(Dashboard, MissingFolderIsNamed) {
  DashboardOptions o = options();
  o.run_dirs.push_back((root_ / "no_such_run").string());
  try {
    DashboardServer server(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_run does not exist"), std::string::npos)
        << e.what();
  }
}

TEST_F(Dashboard, FolderOfRunsNamesTheRuns) {
  write(root_ / "run_a" / "metrics.jsonl", step_line(1, 3.0, now()));
  DashboardOptions o = options();
  o.run_dirs = {root_.string()};
  try {
    DashboardServer server(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("run_a"), std::string::npos) << e.what();
  }
}

TEST_F(Dashboard, PortInUseIsNamed) {
  DashboardServer first(options());
  DashboardOptions o = options();
  o.port = first.port();
  o.port_option = "output.dashboard";
  try {
    DashboardServer second(o);
    FAIL() << "a second server bound port " << o.port;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(str_cat("127.0.0.1:", o.port)), std::string::npos) << m;
    EXPECT_NE(m.find("in use"), std::string::npos) << m;
    EXPECT_NE(m.find("output.dashboard"), std::string::npos) << m;
  }
}

TEST(DashboardNames, TellRunsApart) {
  EXPECT_EQ(run_display_names({"runs/a", "runs/b"}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(run_display_names({"x/run1", "y/run1"}),
            (std::vector<std::string>{"x/run1", "y/run1"}));
  EXPECT_EQ(run_display_names({"r", "r"}), (std::vector<std::string>{"r #1", "r #2"}));
}

}  // namespace
}  // namespace lathe
