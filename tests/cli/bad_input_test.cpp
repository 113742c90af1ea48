// Bad input through the real binary: each case must end in one line on stderr that
// names the file, line, key or tensor, and a non-zero exit status.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/golden.h"
#include "sanitizers/address_sanitizer.h"
#include "support/command.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

struct Result {
  int status;
  std::string output;
};

// `shell` runs first in the same shell (a ulimit for the lathe process).
Result run(const std::string& args, const std::string& shell = "") {
  const std::string cmd = shell + std::string(LATHE_BINARY) + " " + args + " 2>&1 >/dev/null";
  const testing::CommandResult r = testing::run_command(cmd);
  return {r.status, r.out};
}

// Copies the bundled stories260K model into a scratch folder the test may damage.
std::string scratch_model(const std::string& name) {
  const std::string dir = testing::temp_dir("bad_" + name);
  fs::copy(std::string(LATHE_SOURCE_DIR) + "/examples/stories260K", dir + "/model");
  std::ofstream(dir + "/train.jsonl") << "{\"input_ids\": [1, 5, 9, 20, 33]}\n"
                                      << "{\"input_ids\": [1, 7, 8, 9]}\n";
  return dir;
}

std::string train_args(const std::string& dir, const std::string& extra = "") {
  return "train /dev/null model.path=" + dir + "/model data.train=" + dir +
         "/train.jsonl train.max_steps=1 output.dir=" + dir + "/out " + extra;
}

void expect_one_line_error(const Result& r, std::initializer_list<std::string> parts) {
  EXPECT_NE(r.status, 0) << r.output;
  // The resolved config goes to stderr first; the error is the last line, and only one.
  const size_t at = r.output.rfind("error:");
  if (at == std::string::npos) {
    ADD_FAILURE() << "no \"error:\" line in the output:\n" << r.output;
    return;
  }
  const std::string last = r.output.substr(at);
  EXPECT_EQ(std::count(last.begin(), last.end(), '\n'), 1) << last;
  for (const std::string& p : parts)
    EXPECT_NE(last.find(p), std::string::npos) << p << " not in: " << last;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(BadInput, MissingSafetensors) {
  const std::string dir = scratch_model("missing");
  fs::remove(dir + "/model/model.safetensors");
  expect_one_line_error(run(train_args(dir)), {"model", "safetensors"});
}

TEST(BadInput, CorruptSafetensorsHeader) {
  const std::string dir = scratch_model("corrupt");
  write_bytes(dir + "/model/model.safetensors",
              std::string("\x10\x00\x00\x00\x00\x00\x00\x00{not json at all", 24));
  expect_one_line_error(run(train_args(dir)), {"model.safetensors"});
}

TEST(BadInput, TruncatedSafetensors) {
  const std::string dir = scratch_model("truncated");
  const std::string path = dir + "/model/model.safetensors";
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_one_line_error(run(train_args(dir)), {"model.safetensors", "truncated"});
}

TEST(BadInput, ShapeMismatchWithConfig) {
  const std::string dir = scratch_model("shape");
  // A config that claims a wider MLP than the weights have.
  std::ifstream in(dir + "/model/config.json");
  std::string cfg((std::istreambuf_iterator<char>(in)), {});
  const size_t at = cfg.find("\"intermediate_size\"");
  ASSERT_NE(at, std::string::npos);
  const size_t colon = cfg.find(':', at), end = cfg.find_first_of(",}", colon);
  cfg.replace(colon + 1, end - colon - 1, " 999");
  std::ofstream(dir + "/model/config.json", std::ios::trunc) << cfg;
  expect_one_line_error(run(train_args(dir)), {"model.safetensors", "gate_proj", "shape"});
}

TEST(BadInput, UnsupportedDtypeNamesTensor) {
  const std::string dir = scratch_model("dtype");
  const std::string header =
      R"({"model.embed_tokens.weight":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})";
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char((n >> (8 * i)) & 0xff);
  write_bytes(dir + "/model/model.safetensors", bytes + header + std::string(8, '\0'));
  expect_one_line_error(run(train_args(dir)), {"model.embed_tokens.weight", "I64"});
}

TEST(BadInput, MalformedJsonlLineNamesFileAndLine) {
  const std::string dir = scratch_model("jsonl");
  std::ofstream(dir + "/train.jsonl", std::ios::trunc) << "{\"input_ids\": [1, 2, 3]}\n"
                                                       << "{\"input_ids\": [1, 2,, 3]}\n";
  expect_one_line_error(run(train_args(dir)), {"train.jsonl:2"});
}

TEST(BadInput, UnknownConfigKeySuggestsClosest) {
  const std::string dir = scratch_model("key");
  expect_one_line_error(run(train_args(dir, "train.lrr=0.1")), {"train.lrr", "train.lr"});
}

TEST(BadInput, WrongConfigTypeNamesKey) {
  const std::string dir = scratch_model("type");
  expect_one_line_error(run(train_args(dir, "train.batch_size=many")), {"train.batch_size"});
}

TEST(BadInput, UnknownDevice) {
  const std::string dir = scratch_model("bad_device");
  expect_one_line_error(run(train_args(dir, "train.device=tpu")), {"train.device", "tpu"});
  expect_one_line_error(run("bench --peak --device tpu"), {"unknown device 'tpu'"});
}

#ifndef LATHE_HAVE_CUDA
// A build without CUDA asked for it says how to get it, for every verb that computes.
TEST(BadInput, CudaOnABuildWithoutIt) {
  const std::string dir = scratch_model("no_cuda");
  expect_one_line_error(run(train_args(dir, "train.device=cuda")), {"-DLATHE_CUDA=ON"});
  expect_one_line_error(run("bench --peak --device cuda"), {"-DLATHE_CUDA=ON"});
  expect_one_line_error(run("generate --model " + dir + "/model --prompt hello --device cuda"),
                        {"-DLATHE_CUDA=ON"});
}
#endif

// Out of memory, foreseen: a Llama 3 8B full fine-tune (148 GiB by its plan) on a machine
// without that much refuses before reading any weight (the folder has none: only its
// config.json), with the plan's numbers and what is available; the override goes ahead.
TEST(BadInput, ARunThatCannotFitRefusesBeforeLoadingWithTheNumbers) {
  const std::string dir = scratch_model("too_big");
  fs::remove_all(dir + "/model");
  fs::create_directories(dir + "/model");
  fs::copy_file(std::string(LATHE_SOURCE_DIR) + "/configs/bench/llama3-8b.json",
                dir + "/model/config.json");
  expect_one_line_error(run(train_args(dir, "data.seq_len=1024")),
                        {"this run needs about 1", "GiB of memory on this machine",
                         "model states 1", "is available (", "train.memory_check=false"});
  // Started anyway, it gets as far as allocating the model (or, where the allocation
  // succeeds lazily, reading the weights), which the check had spared it.
  const Result r = run(train_args(dir, "data.seq_len=1024 train.memory_check=false"));
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.output.find("this run needs about"), std::string::npos) << r.output;
}

TEST(BadInput, ARunOverTheProcessMemoryLimitRefuses) {
#if defined(LATHE_TEST_ASAN)
  // RLIMIT_DATA counts every private writable mapping, and AddressSanitizer's shadow
  // (reserved at start, 256 MiB in its first range alone) is one: an instrumented lathe
  // cannot start under `ulimit -d 100000` at all, so there is no refusal to check.
  GTEST_SKIP() << "AddressSanitizer build: its shadow memory does not fit under ulimit -d";
#endif
  const std::string dir = scratch_model("ulimit");
  // stories260K at 512 tokens × 4 rows plans ~150 MiB; give the process less (KiB).
  expect_one_line_error(run(train_args(dir, "data.seq_len=512"), "ulimit -d 100000; "),
                        {"this run needs about", "of memory per process",
                         "is left under RLIMIT_DATA (ulimit -d)", "train.memory_check=false"});
}

}  // namespace
}  // namespace lathe

// lathe export --gguf: the type, the folder, and weights that contradict config.json.
namespace lathe {
namespace {

TEST(BadInput, ExportGgufNamesTypeFolderAndTensor) {
  const std::string dir = scratch_model("export");
  expect_one_line_error(
      run("export --model " + dir + "/model --gguf " + dir + "/m.gguf --type q2_k"),
      {"--type q2_k", "f32, f16, bf16, q8_0, q4_0, q4_k"});
  expect_one_line_error(run("export --model " + dir + "/none --gguf " + dir + "/m.gguf"),
                        {dir + "/none: not a folder"});
  fs::remove(dir + "/model/model.safetensors");
  expect_one_line_error(run("export --model " + dir + "/model --gguf " + dir + "/m.gguf"),
                        {"model.safetensors"});
  EXPECT_FALSE(fs::exists(dir + "/m.gguf"));
  EXPECT_FALSE(fs::exists(dir + "/m.gguf.tmp"));
}

}  // namespace
}  // namespace lathe
