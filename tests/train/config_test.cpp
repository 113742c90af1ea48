#include "train/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "core/error.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / str_cat("lathe_config_test_", getpid(), "_", info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& text, const std::string& name = "run.yaml") {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  fs::path dir_;
};

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a lathe::Error";
  return "";
}

std::string override_error(const std::string& override_text) {
  return error_of([&] { load_config("", {override_text}); });
}

void expect_same(const Config& a, const Config& b) {
  EXPECT_EQ(a.model.path, b.model.path);
  EXPECT_EQ(a.data.train, b.data.train);
  EXPECT_EQ(a.data.eval, b.data.eval);
  EXPECT_EQ(a.data.format, b.data.format);
  EXPECT_EQ(a.data.seq_len, b.data.seq_len);
  EXPECT_EQ(a.data.shuffle, b.data.shuffle);
  EXPECT_EQ(a.train.precision, b.train.precision);
  EXPECT_EQ(a.train.batch_size, b.train.batch_size);
  EXPECT_EQ(a.train.grad_accum, b.train.grad_accum);
  EXPECT_EQ(a.train.max_steps, b.train.max_steps);
  EXPECT_EQ(a.train.epochs, b.train.epochs);
  EXPECT_EQ(a.train.lr, b.train.lr);
  EXPECT_EQ(a.train.weight_decay, b.train.weight_decay);
  EXPECT_EQ(a.train.betas, b.train.betas);
  EXPECT_EQ(a.train.eps, b.train.eps);
  EXPECT_EQ(a.train.schedule, b.train.schedule);
  EXPECT_EQ(a.train.warmup_steps, b.train.warmup_steps);
  EXPECT_EQ(a.train.gamma, b.train.gamma);
  EXPECT_EQ(a.train.grad_clip, b.train.grad_clip);
  EXPECT_EQ(a.train.seed, b.train.seed);
  EXPECT_EQ(a.train.threads, b.train.threads);
  EXPECT_EQ(a.train.activation_checkpointing, b.train.activation_checkpointing);
  EXPECT_EQ(a.train.resume, b.train.resume);
  EXPECT_EQ(a.train.log_every, b.train.log_every);
  EXPECT_EQ(a.output.dir, b.output.dir);
  EXPECT_EQ(a.output.save_every, b.output.save_every);
  EXPECT_EQ(a.output.keep_last, b.output.keep_last);
  EXPECT_EQ(a.output.save_dtype, b.output.save_dtype);
}

TEST_F(ConfigTest, DefaultsWithoutFileOrOverrides) {
  Config c = load_config("", {});
  expect_same(c, Config{});
  EXPECT_EQ(c.train.precision, "bf16");
  EXPECT_EQ(c.train.lr, 1e-4);
  EXPECT_EQ(c.train.betas, (std::vector<double>{0.9, 0.999}));
  EXPECT_EQ(c.data.format, "input_ids");
  EXPECT_TRUE(c.model.path.empty());  // commands check what they need, not the loader
}

TEST_F(ConfigTest, KeysAreUniqueDottedAndInStructOrder) {
  std::vector<std::string> keys = config_keys();
  EXPECT_GE(keys.size(), 30u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), keys.size());
  EXPECT_EQ(keys.front(), "model.path");
  EXPECT_EQ(keys.back(), "output.overwrite");
  EXPECT_NE(std::find(keys.begin(), keys.end(), "train.lr"), keys.end());
  EXPECT_NE(std::find(keys.begin(), keys.end(), "data.seq_len"), keys.end());
}

TEST_F(ConfigTest, LoadsNestedYaml) {
  std::string path = write(R"(# a comment
model:
  path: /models/llama
data:
  train: data/train.jsonl
  seq_len: 1024
  shuffle: false
train:
  precision: fp32
  lr: 3e-5
  betas: [0.9, 0.95]
  schedule: linear
  seed: 7
output:
)");
  Config c = load_config(path, {});
  EXPECT_EQ(c.model.path, "/models/llama");
  EXPECT_EQ(c.data.train, "data/train.jsonl");
  EXPECT_EQ(c.data.seq_len, 1024);
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.train.precision, "fp32");
  EXPECT_EQ(c.train.lr, 3e-5);
  EXPECT_EQ(c.train.betas, (std::vector<double>{0.9, 0.95}));
  EXPECT_EQ(c.train.schedule, "linear");
  EXPECT_EQ(c.train.seed, 7u);
  EXPECT_EQ(c.train.batch_size, 4);  // untouched keys keep their defaults
  EXPECT_EQ(c.output.dir, "runs/lathe");
}

TEST_F(ConfigTest, EmptyFileGivesDefaults) {
  expect_same(load_config(write(""), {}), Config{});
  expect_same(load_config(write("# nothing here\n"), {}), Config{});
}

TEST_F(ConfigTest, OverridesScalarListBoolAndString) {
  Config c = load_config(
      "", {"train.lr=2e-5", "train.betas=[0.9,0.95]", "data.shuffle=false", "train.resume=true",
           "model.path=/m/llama 3", "train.seed=123", "output.save_dtype="});
  EXPECT_EQ(c.train.lr, 2e-5);
  EXPECT_EQ(c.train.betas, (std::vector<double>{0.9, 0.95}));
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.train.resume, "true");
  EXPECT_EQ(c.model.path, "/m/llama 3");
  EXPECT_EQ(c.train.seed, 123u);
  EXPECT_EQ(c.output.save_dtype, "");
}

TEST_F(ConfigTest, OverridesWinOverFileAndLaterOverridesWin) {
  std::string path = write("train:\n  lr: 1e-3\n  batch_size: 8\n");
  Config c = load_config(path, {"train.lr=5e-4", "train.grad_accum=2", "train.grad_accum=3"});
  EXPECT_EQ(c.train.lr, 5e-4);
  EXPECT_EQ(c.train.batch_size, 8);
  EXPECT_EQ(c.train.grad_accum, 3);
}

TEST_F(ConfigTest, OverrideWithoutEqualsExplainsTheForm) {
  std::string msg = override_error("train.lr");
  EXPECT_NE(msg.find("command line"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'train.lr'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("section.key=value"), std::string::npos) << msg;
}

TEST_F(ConfigTest, OverrideWithBadYamlValue) {
  std::string msg = override_error("train.betas=[0.9,");
  EXPECT_NE(msg.find("command line"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.betas"), std::string::npos) << msg;
}

TEST_F(ConfigTest, UnknownKeyInFileSuggestsClosest) {
  std::string path = write("model:\n  path: x\ntrain:\n  lrr: 1e-4\n");
  std::string msg = error_of([&] { load_config(path, {}); });
  EXPECT_EQ(msg, path + ":4: unknown config key 'train.lrr'; did you mean 'train.lr'?");
}

TEST_F(ConfigTest, UnknownKeyOnCommandLineSuggestsClosest) {
  std::string msg = override_error("train.bacth_size=8");
  EXPECT_NE(msg.find("command line"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'train.bacth_size'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'train.batch_size'"), std::string::npos) << msg;
}

TEST_F(ConfigTest, UnknownKeySuggestsTheSameKeyInItsRealSection) {
  std::string msg = override_error("train.seq_len=128");
  EXPECT_NE(msg.find("did you mean 'data.seq_len'"), std::string::npos) << msg;
  msg = override_error("lr=1");
  EXPECT_NE(msg.find("did you mean 'train.lr'"), std::string::npos) << msg;
}

TEST_F(ConfigTest, UnknownKeyFarFromAnyListsTheSectionKeys) {
  std::string msg = override_error("train.learning_rate=1");
  EXPECT_EQ(msg.find("did you mean"), std::string::npos) << msg;
  EXPECT_NE(msg.find("valid keys in 'train'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("batch_size"), std::string::npos) << msg;
}

TEST_F(ConfigTest, UnknownSection) {
  std::string path = write("trian:\n  lr: 1e-4\n");
  std::string msg = error_of([&] { load_config(path, {}); });
  EXPECT_NE(msg.find(path + ":1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'trian'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'train'"), std::string::npos) << msg;

  path = write("optimizer:\n  lr: 1e-4\n");
  msg = error_of([&] { load_config(path, {}); });
  EXPECT_NE(msg.find("'optimizer'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model, data, train, peft, eval, dist, output"), std::string::npos) << msg;
}

TEST_F(ConfigTest, WrongTypeNamesKeyExpectationAndValue) {
  std::string path = write("train:\n  batch_size: abc\n");
  EXPECT_EQ(error_of([&] { load_config(path, {}); }),
            path + ":2: config key 'train.batch_size' expects an integer, got 'abc'");
  EXPECT_EQ(override_error("train.batch_size=abc"),
            "command line: config key 'train.batch_size' expects an integer, got 'abc'");
  EXPECT_NE(override_error("train.batch_size=2.5").find("expects an integer"), std::string::npos);
  EXPECT_NE(override_error("train.seed=-1").find("non-negative integer"), std::string::npos);
  EXPECT_NE(override_error("data.shuffle=yes").find("true or false, got 'yes'"), std::string::npos);
  EXPECT_NE(override_error("train.lr=fast").find("number, got 'fast'"), std::string::npos);
  EXPECT_NE(override_error("train.lr=nan").find("finite number"), std::string::npos);
  EXPECT_NE(override_error("train.betas=0.9").find("list of numbers"), std::string::npos);
  EXPECT_NE(override_error("train.betas=[0.9,x]").find("'x' at index 1"), std::string::npos);
  EXPECT_NE(override_error("model.path=[a,b]").find("expects a string, got a list"),
            std::string::npos);
  path = write("train: 5\n");
  EXPECT_NE(error_of([&] { load_config(path, {}); }).find("section 'train' must be a mapping"),
            std::string::npos);
}

TEST_F(ConfigTest, EnumAndRangeValidationNamesTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"train.precision=fp16", "train.precision"},
      {"train.schedule=exp", "train.schedule"},
      {"data.format=parquet", "data.format"},
      {"output.save_dtype=fp16", "output.save_dtype"},
      {"train.batch_size=0", "train.batch_size"},
      {"train.grad_accum=0", "train.grad_accum"},
      {"data.seq_len=0", "data.seq_len"},
      {"train.lr=0", "train.lr"},
      {"train.epochs=0", "train.epochs"},
      {"train.betas=[0.9]", "train.betas"},
      {"train.betas=[0.9,1.0]", "train.betas"},
      {"train.betas=[0.9,0.95,0.99]", "train.betas"},
      {"train.betas=[-0.1,0.9]", "train.betas"},
      {"train.eps=0", "train.eps"},
      {"train.grad_clip=-1", "train.grad_clip"},
      {"train.threads=-1", "train.threads"},
      {"train.warmup_steps=-1", "train.warmup_steps"},
      {"train.max_steps=-1", "train.max_steps"},
      {"output.save_every=-1", "output.save_every"},
      {"output.keep_last=0", "output.keep_last"},
  };
  for (const auto& [override_text, key] : cases) {
    std::string msg = override_error(override_text);
    EXPECT_NE(msg.find(str_cat("'", key, "'")), std::string::npos) << override_text << ": " << msg;
    EXPECT_NE(msg.find("command line"), std::string::npos) << msg;
  }
  EXPECT_NE(override_error("train.precision=fp16").find("fp32, bf16"), std::string::npos);
}

TEST_F(ConfigTest, ValidEnumValuesAreAccepted) {
  for (const char* s : {"constant", "linear", "cosine", "step"})
    EXPECT_EQ(load_config("", {str_cat("train.schedule=", s)}).train.schedule, s);
  for (const char* d : {"bf16", "fp32"}) {
    EXPECT_EQ(load_config("", {str_cat("output.save_dtype=", d)}).output.save_dtype, d);
    EXPECT_EQ(load_config("", {str_cat("train.precision=", d)}).train.precision, d);
  }
}

TEST_F(ConfigTest, ValidationErrorPointsAtTheFileLine) {
  std::string path = write("train:\n  lr: 1e-4\n  precision: fp16\n");
  std::string msg = error_of([&] { load_config(path, {}); });
  EXPECT_NE(msg.find(path + ":3:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'train.precision'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'fp16'"), std::string::npos) << msg;
  // The override fixes the file's value, so validation sees only the final one.
  EXPECT_EQ(load_config(path, {"train.precision=fp32"}).train.precision, "fp32");
}

TEST_F(ConfigTest, YamlSyntaxErrorNamesTheLine) {
  std::string path = write("model:\n  path: a\ntrain:\n  lr: 1: 2\n");
  std::string msg = error_of([&] { load_config(path, {}); });
  EXPECT_NE(msg.find(path + ":4:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid YAML"), std::string::npos) << msg;
}

TEST_F(ConfigTest, DuplicateKeyInFile) {
  std::string path = write("train:\n  lr: 1\n  lr: 2\n");
  std::string msg = error_of([&] { load_config(path, {}); });
  EXPECT_NE(msg.find(path + ":3:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'train.lr' is set twice"), std::string::npos) << msg;
}

TEST_F(ConfigTest, MissingFile) {
  std::string path = (dir_ / "nope.yaml").string();
  std::string msg = error_of([&] { load_config(path, {}); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST_F(ConfigTest, ToYamlListsEveryKeyInOrder) {
  std::string yaml = config_to_yaml(Config{});
  size_t last = 0;
  for (const std::string& key : config_keys()) {
    std::string leaf = key.substr(key.find('.') + 1) + ":";
    size_t at = yaml.find("\n  " + leaf, last);
    ASSERT_NE(at, std::string::npos) << key << " missing or out of order in:\n" << yaml;
    last = at;
  }
  size_t model = yaml.find("model:"), data = yaml.find("data:"), train = yaml.find("\ntrain:"),
         output = yaml.find("output:");
  EXPECT_LT(model, data);
  EXPECT_LT(data, train);
  EXPECT_LT(train, output);
}

TEST_F(ConfigTest, ToYamlRoundTripsEveryField) {
  Config c;
  c.model.path = "/models/llama: v2 # test";
  c.data.train = "~";
  c.data.eval = "true";
  c.data.seq_len = 4096;
  c.data.shuffle = false;
  c.data.packing = true;
  c.data.padding = "max_length";
  c.train.precision = "fp32";
  c.train.batch_size = 16;
  c.train.grad_accum = 8;
  c.train.max_steps = 1000;
  c.train.epochs = 2.5;
  c.train.lr = 0.1 + 0.2;  // 0.30000000000000004: needs all 17 digits
  c.train.weight_decay = 1.0 / 3.0;
  c.train.betas = {0.85, 0.9990000000000001};
  c.train.eps = 1e-12;
  c.train.schedule = "step";
  c.train.warmup_steps = 100;
  c.train.gamma = 0.7;
  c.train.grad_clip = 0;
  c.train.seed = 18446744073709551615u;
  c.train.threads = 12;
  c.train.activation_checkpointing = true;
  c.train.resume = "true";
  c.train.log_every = 10;
  c.output.dir = "";
  c.output.save_every = 500;
  c.output.keep_last = 5;
  c.output.save_dtype = "bf16";

  std::string yaml = config_to_yaml(c);
  expect_same(load_config(write(yaml), {}), c);
  // Printing the reloaded config gives the same text: nothing drifts on a second trip.
  EXPECT_EQ(config_to_yaml(load_config(write(yaml, "again.yaml"), {})), yaml);
}

TEST_F(ConfigTest, DefaultsRoundTrip) {
  expect_same(load_config(write(config_to_yaml(Config{})), {}), Config{});
}

}  // namespace
}  // namespace lathe

namespace lathe {
namespace {

// docs/config.md is generated by scripts/gen_config_doc.sh; it must list every key with
// its current default and doc string.
TEST(ConfigDocs, DocsListEveryKeyAsPrinted) {
  std::ifstream f(std::string(LATHE_SOURCE_DIR) + "/docs/config.md");
  ASSERT_TRUE(f) << "docs/config.md missing";
  const std::string doc((std::istreambuf_iterator<char>(f)), {});
  EXPECT_NE(doc.find(config_to_yaml(Config{})), std::string::npos)
      << "docs/config.md is out of date: run scripts/gen_config_doc.sh";
}

// Every section.key the README and docs/ tell users to set must be a key the config
// accepts: docs/data.md once described data.field_map while the config refused it.
TEST(ConfigDocs, EveryKeyTheDocsMentionIsAccepted) {
  const fs::path root = LATHE_SOURCE_DIR;
  auto read = [](const fs::path& p) {
    std::ifstream f(p);
    return std::string((std::istreambuf_iterator<char>(f)), {});
  };
  // ctest names such as dist.two_hosts look like keys; they are registered with add_test.
  std::set<std::string> tests;
  const std::string cmake = read(root / "tests/CMakeLists.txt");
  const std::regex add_test(R"(add_test\(NAME ([\w.]+))");
  for (auto it = std::sregex_iterator(cmake.begin(), cmake.end(), add_test);
       it != std::sregex_iterator(); ++it)
    tests.insert((*it)[1]);
  const auto keys = config_keys();
  std::vector<fs::path> docs = {root / "README.md"};
  for (const auto& e : fs::directory_iterator(root / "docs"))
    if (e.path().extension() == ".md") docs.push_back(e.path());
  // A key as the docs write one: `data.field_map`, or data.field_map=... in a command.
  const std::regex mention(
      R"((?:^|[^\w/.\-])((?:model|data|train|peft|eval|dist|output)\.[a-z_]+)(?=[=`]))");
  size_t checked = 0;
  for (const fs::path& doc : docs) {
    const std::string text = read(doc);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), mention);
         it != std::sregex_iterator(); ++it) {
      const std::string key = (*it)[1];
      const std::string ext = key.substr(key.find('.') + 1);
      if (tests.count(key) || ext == "py" || ext == "safetensors" || ext == "json" ||
          ext == "jsonl" || ext == "md" || ext == "yaml")
        continue;
      ++checked;
      EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end())
          << doc.filename() << " mentions '" << key << "', which the config does not accept";
    }
  }
  EXPECT_GT(checked, 50u);  // the scan found the docs' keys at all
}

}  // namespace
}  // namespace lathe
