#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/error.h"
#include "core/json.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

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

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string u64_le(uint64_t n) { return std::string(reinterpret_cast<const char*>(&n), 8); }

// A file in the reference layout: length, header, data.
std::string st_bytes(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "lathe_st_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(SafetensorsTest, RoundTripIsBitExact) {
  std::vector<float> f32 = {1.0f, -2.0f, 3.5f, 0.0f, -0.0f, 1e-40f};
  std::vector<uint16_t> bf = {0x3f80, 0x7fc0, 0xff80, 0x0001, 0x1234};
  std::vector<uint16_t> f16 = {0x3c00, 0x7bff, 0x8001};
  float scalar = 42.0f;
  std::vector<TensorToWrite> in = {
      {"w.f32", DType::F32, {2, 3}, f32.data()},
      {"w.bf16", DType::BF16, {5}, bf.data()},  // odd byte count: the next offset is unaligned
      {"w.f16", DType::F16, {3, 1}, f16.data()},
      {"scalar", DType::F32, {}, &scalar},
      {"empty", DType::F32, {0, 4}, nullptr},
  };
  std::string p = path("model.safetensors");
  safetensors_write(p, in, {{"format", "pt"}, {"step", "7"}});
  EXPECT_FALSE(fs::exists(p + ".tmp"));

  SafetensorsFile f(p);
  EXPECT_EQ(f.path(), p);
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"step", "7"}}));
  ASSERT_EQ(f.tensors().size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    SCOPED_TRACE(in[i].name);
    EXPECT_EQ(t.name, in[i].name);  // file order is write order
    EXPECT_EQ(t.dtype, in[i].dtype);
    EXPECT_EQ(t.shape, in[i].shape);
    EXPECT_EQ(t.file, p);
    ASSERT_EQ(t.nbytes, size_t(t.numel()) * dtype_size(t.dtype));
    if (t.nbytes) {
      EXPECT_EQ(std::memcmp(t.data, in[i].data, t.nbytes), 0);
    }
    EXPECT_EQ(f.find(in[i].name), &t);
  }
  EXPECT_EQ(f.tensors()[3].numel(), 1);
  EXPECT_EQ(f.find("absent"), nullptr);
}

TEST_F(SafetensorsTest, LayoutMatchesReferenceWriter) {
  std::vector<float> a = {1.0f, 2.0f};
  std::vector<uint16_t> b = {0x3f80};
  std::string p = path("ref.safetensors");
  safetensors_write(p, {{"a", DType::F32, {2}, a.data()}, {"b", DType::BF16, {1, 1}, b.data()}});
  // What Python's safetensors.torch.save_file writes for these tensors: compact JSON,
  // __metadata__ first, dtype/shape/data_offsets, padded with spaces to 8-byte alignment.
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string data(reinterpret_cast<const char*>(a.data()), 8);
  data += std::string(reinterpret_cast<const char*>(b.data()), 2);
  std::string bytes = read_all(p);
  EXPECT_EQ(bytes, st_bytes(header, data));
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
}

TEST_F(SafetensorsTest, HeaderPaddingForEveryLength) {
  float v = 1.0f;
  for (size_t len = 1; len <= 9; ++len) {
    std::string p = path("pad.safetensors");
    safetensors_write(p, {{std::string(len, 'x'), DType::F32, {1}, &v}}, {});
    std::string bytes = read_all(p);
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ((8 + n) % 8, 0u) << len;
    EXPECT_EQ(bytes.size(), 8 + n + 4);
    SafetensorsFile f(p);
    EXPECT_TRUE(f.metadata().empty());
    EXPECT_EQ(f.tensors().at(0).name, std::string(len, 'x'));
  }
}

TEST_F(SafetensorsTest, ReadsHandWrittenFile) {
  // Key order, spacing and metadata placement differ from lathe's writer, as files from
  // other tools do.
  std::string header = R"({ "b": {"data_offsets": [8, 12], "shape": [2], "dtype": "BF16"},)"
                       R"( "a": {"shape": [2], "dtype": "F32", "data_offsets": [0, 8]},)"
                       R"( "__metadata__": {"format": "pt"}}   )";
  std::vector<float> a = {0.5f, -4.0f};
  std::vector<uint16_t> b = {0x4040, 0xc000};  // 3.0, -2.0
  std::string data(reinterpret_cast<const char*>(a.data()), 8);
  data += std::string(reinterpret_cast<const char*>(b.data()), 4);
  std::string p = path("hand.safetensors");
  write_all(p, st_bytes(header, data));
  SafetensorsFile f(p);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "a");
  EXPECT_EQ(f.tensors()[1].name, "b");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const TensorInfo* tb = f.find("b");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->dtype, DType::BF16);
  std::vector<float> out(2);
  convert_to_f32(tb->data, tb->dtype, out.data(), 2);
  EXPECT_EQ(out, (std::vector<float>{3.0f, -2.0f}));
  convert_to_f32(f.find("a")->data, DType::F32, out.data(), 2);
  EXPECT_EQ(out, a);
}

TEST_F(SafetensorsTest, ReadsStories260K) {
  std::string p = "/work/shared/data/models/stories260K/hf/model.safetensors";
  if (!fs::exists(p)) GTEST_SKIP() << p << " not present";
  SafetensorsFile f(p);
  const TensorInfo* emb = f.find("model.embed_tokens.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(emb->dtype, DType::F32);
  EXPECT_NE(f.find("model.layers.4.mlp.up_proj.weight"), nullptr);
}

TEST_F(SafetensorsTest, MissingFile) {
  std::string p = path("nope.safetensors");
  EXPECT_EQ(error_of([&] { SafetensorsFile f(p); }),
            "cannot open " + p + ": No such file or directory");
}

TEST_F(SafetensorsTest, EmptyFile) {
  std::string p = path("empty.safetensors");
  write_all(p, "");
  std::string msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_TRUE(Contains(msg, p));
  EXPECT_TRUE(Contains(msg, "0 bytes"));
}

TEST_F(SafetensorsTest, TruncatedData) {
  std::vector<float> v(16, 1.0f);
  std::string p = path("model.safetensors");
  safetensors_write(p, {{"model.layers.0.mlp.down_proj.weight", DType::F32, {4, 4}, v.data()},
                        {"model.layers.0.mlp.up_proj.weight", DType::F32, {4, 4}, v.data()}});
  size_t size = fs::file_size(p);
  fs::resize_file(p, size - 4);
  std::string msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_TRUE(Contains(msg, p +
                                ": tensor 'model.layers.0.mlp.up_proj.weight': data_offsets "
                                "[64,128] run past the end of the file (size " +
                                std::to_string(size - 4) + ")"));
  EXPECT_TRUE(Contains(msg, "re-download"));
}

TEST_F(SafetensorsTest, HeaderLengthLargerThanFile) {
  std::string p = path("long.safetensors");
  write_all(p, u64_le(1000) + "{}");
  std::string msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_TRUE(Contains(msg, p));
  EXPECT_TRUE(Contains(msg, "header length 1000"));
  write_all(p, u64_le(~uint64_t(0)) + "{}");  // must not overflow into "fits"
  EXPECT_TRUE(Contains(error_of([&] { SafetensorsFile f(p); }), "header length"));
}

TEST_F(SafetensorsTest, MalformedJsonHeader) {
  std::string p = path("bad.safetensors");
  write_all(p, st_bytes(R"({"a": {"dtype": "F32", )", ""));
  std::string msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_TRUE(Contains(msg, p));
  EXPECT_TRUE(Contains(msg, "not valid JSON"));
  write_all(p, st_bytes("[1, 2]", ""));
  EXPECT_TRUE(Contains(error_of([&] { SafetensorsFile f(p); }), "must be a JSON object"));
}

TEST_F(SafetensorsTest, UnknownDtype) {
  std::string p = path("ids.safetensors");
  write_all(p, st_bytes(R"({"position_ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})",
                        std::string(16, '\0')));
  std::string msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_TRUE(Contains(msg, p + ": tensor 'position_ids'"));
  EXPECT_TRUE(Contains(msg, "dtype 'I64' is not supported"));
}

TEST_F(SafetensorsTest, ShapeSizeMismatch) {
  std::string p = path("mismatch.safetensors");
  write_all(p, st_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                        std::string(8, '\0')));
  std::string msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_TRUE(Contains(msg, p + ": tensor 'w'"));
  EXPECT_TRUE(Contains(msg, "hold 8 bytes but shape [3] of F32 needs 12 bytes"));
}

TEST_F(SafetensorsTest, BadShapeAndOffsets) {
  std::string p = path("shape.safetensors");
  write_all(p, st_bytes(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                        std::string(4, '\0')));
  std::string msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_TRUE(Contains(msg, "tensor 'w'"));
  EXPECT_TRUE(Contains(msg, "non-negative"));
  write_all(p, st_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
                        std::string(4, '\0')));
  EXPECT_TRUE(Contains(error_of([&] { SafetensorsFile f(p); }), "end before they begin"));
  write_all(p, st_bytes(R"({"w":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')));
  EXPECT_TRUE(Contains(error_of([&] { SafetensorsFile f(p); }), "'data_offsets'"));
  write_all(p, st_bytes(R"({"__metadata__":{"step":7}})", ""));
  EXPECT_TRUE(Contains(error_of([&] { SafetensorsFile f(p); }), "'step' must be a string"));
}

TEST_F(SafetensorsTest, OverlappingOffsets) {
  std::string p = path("overlap.safetensors");
  write_all(p, st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        std::string(12, '\0')));
  std::string msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_TRUE(Contains(msg, p));
  EXPECT_TRUE(Contains(msg, "'a' [0,8] and 'b' [4,12] overlap"));
}

TEST_F(SafetensorsTest, WriteIntoMissingFolderFails) {
  float v = 1.0f;
  std::string p = path("no/such/dir/model.safetensors");
  std::string msg = error_of([&] { safetensors_write(p, {{"w", DType::F32, {1}, &v}}); });
  EXPECT_TRUE(Contains(msg, p));
  EXPECT_TRUE(Contains(msg, "No such file or directory"));
}

TEST_F(SafetensorsTest, FailedWriteLeavesNoFile) {
  // A file-size limit makes write() fail part-way, the way a full disk does.
  std::vector<float> big(1 << 16, 1.0f);
  std::string p = path("model.safetensors");
  safetensors_write(p, {{"old", DType::F32, {1}, big.data()}});
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg = error_of([&] {
    safetensors_write(p, {{"w", DType::F32, {1 << 16}, big.data()}});
  });
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(Contains(msg, "cannot write " + p));
  EXPECT_TRUE(Contains(msg, std::strerror(EFBIG)));
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  SafetensorsFile f(p);  // the previous file is untouched
  EXPECT_NE(f.find("old"), nullptr);
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  float v = 1.0f;
  std::string p = path("x.safetensors");
  EXPECT_TRUE(
      Contains(error_of([&] {
                 safetensors_write(p, {{"w", DType::F32, {1}, &v}, {"w", DType::F32, {1}, &v}});
               }),
               "tensor 'w' appears twice"));
  EXPECT_TRUE(Contains(error_of([&] {
                         safetensors_write(p, {{"w", DType::F32, {-2}, &v}});
                       }),
                       "invalid shape [-2]"));
  EXPECT_TRUE(Contains(error_of([&] {
                         safetensors_write(p, {{"w", DType::F32, {2}, nullptr}});
                       }),
                       "has no data"));
  EXPECT_FALSE(fs::exists(p));
}

std::vector<std::vector<float>> make_values(size_t count, size_t n) {
  std::vector<std::vector<float>> v(count, std::vector<float>(n));
  for (size_t i = 0; i < count; ++i) {
    for (size_t j = 0; j < n; ++j) v[i][j] = float(i * 100 + j);
  }
  return v;
}

TEST_F(SafetensorsTest, SingleFileModel) {
  auto vals = make_values(3, 16);
  std::vector<TensorToWrite> ts;
  for (size_t i = 0; i < vals.size(); ++i) {
    ts.push_back({"t" + std::to_string(i), DType::F32, {4, 4}, vals[i].data()});
  }
  std::string folder = path("single");
  fs::create_directories(folder);
  write_all(folder + "/model.safetensors.index.json", R"({"weight_map":{}})");
  EXPECT_EQ(safetensors_write_model(folder, ts, 1 << 20),
            (std::vector<std::string>{"model.safetensors"}));
  EXPECT_FALSE(fs::exists(folder + "/model.safetensors.index.json"));
  SafetensorsModel m(folder);
  EXPECT_EQ(m.files(), (std::vector<std::string>{"model.safetensors"}));
  EXPECT_EQ(m.names(), (std::vector<std::string>{"t0", "t1", "t2"}));
  EXPECT_EQ(std::memcmp(m.get("t2").data, vals[2].data(), 64), 0);
  EXPECT_EQ(m.find("zzz"), nullptr);
  EXPECT_EQ(error_of([&] { m.get("zzz"); }),
            folder + ": tensor 'zzz' not found in model.safetensors");
}

class ShardedModelTest : public SafetensorsTest {
 protected:
  void SetUp() override {
    SafetensorsTest::SetUp();
    vals_ = make_values(5, 16);
    for (size_t i = 0; i < vals_.size(); ++i) {
      tensors_.push_back({"layer." + std::to_string(i), DType::F32, {16}, vals_[i].data()});
    }
    folder_ = path("sharded");
    files_ = safetensors_write_model(folder_, tensors_, 150);  // two 64-byte tensors a shard
  }
  std::string shard(int i) const {
    return folder_ + "/model-0000" + std::to_string(i) + "-of-00003.safetensors";
  }
  std::string index_path() const { return folder_ + "/model.safetensors.index.json"; }

  std::vector<std::vector<float>> vals_;
  std::vector<TensorToWrite> tensors_;
  std::string folder_;
  std::vector<std::string> files_;
};

TEST_F(ShardedModelTest, RoundTrip) {
  EXPECT_EQ(files_, (std::vector<std::string>{
                        "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                        "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  std::string text = read_all(index_path());
  auto index = nlohmann::json::parse(text);
  EXPECT_EQ(index["metadata"]["total_size"], 5 * 64);
  EXPECT_EQ(index["weight_map"]["layer.0"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["layer.1"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["layer.2"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["layer.3"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["layer.4"], "model-00003-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"].size(), 5u);
  EXPECT_LT(text.find("\"metadata\""), text.find("\"weight_map\""));  // sorted keys
  EXPECT_TRUE(Contains(text, "\n  \"metadata\": {\n    \"total_size\": 320\n  },"));
  EXPECT_FALSE(fs::exists(folder_ + "/model.safetensors"));

  SafetensorsModel m(folder_);
  EXPECT_EQ(m.files(), (std::vector<std::string>(files_.begin(), files_.end() - 1)));
  ASSERT_EQ(m.names().size(), 5u);
  for (size_t i = 0; i < vals_.size(); ++i) {
    const TensorInfo& t = m.get("layer." + std::to_string(i));
    EXPECT_EQ(std::memcmp(t.data, vals_[i].data(), 64), 0);
    EXPECT_EQ(t.file, shard(int(i / 2 + 1)));
  }
  EXPECT_TRUE(Contains(error_of([&] { m.get("lm_head.weight"); }),
                       "not found in model-00001-of-00003.safetensors, "
                       "model-00002-of-00003.safetensors, model-00003-of-00003.safetensors"));
}

TEST_F(ShardedModelTest, OversizedTensorGetsItsOwnShard) {
  auto files = safetensors_write_model(path("big"), tensors_, 10);
  EXPECT_EQ(files.size(), 6u);
  EXPECT_EQ(files[0], "model-00001-of-00005.safetensors");
  SafetensorsModel m(path("big"));
  EXPECT_EQ(m.names().size(), 5u);
}

TEST_F(ShardedModelTest, MissingShard) {
  fs::remove(shard(2));
  std::string msg = error_of([&] { SafetensorsModel m(folder_); });
  EXPECT_TRUE(Contains(msg, index_path()));
  EXPECT_TRUE(Contains(msg, "tensor 'layer.2'"));
  EXPECT_TRUE(Contains(msg, shard(2) + " does not exist"));
}

TEST_F(ShardedModelTest, TensorListedButAbsentFromShard) {
  auto index = nlohmann::json::parse(read_all(index_path()));
  index["weight_map"]["ghost.weight"] = "model-00002-of-00003.safetensors";
  write_all(index_path(), index.dump());
  std::string msg = error_of([&] { SafetensorsModel m(folder_); });
  EXPECT_TRUE(Contains(msg, index_path()));
  EXPECT_TRUE(Contains(msg,
                       "tensor 'ghost.weight' in model-00002-of-00003.safetensors, but that "
                       "file does not contain it"));
}

TEST_F(ShardedModelTest, TensorInTwoShards) {
  safetensors_write(shard(3), {tensors_[4], tensors_[0]});
  std::string msg = error_of([&] { SafetensorsModel m(folder_); });
  EXPECT_TRUE(Contains(msg, "tensor 'layer.0' is in both " + shard(1) + " and " + shard(3)));
}

TEST_F(ShardedModelTest, ShardTensorMissingFromIndex) {
  auto index = nlohmann::json::parse(read_all(index_path()));
  index["weight_map"].erase("layer.3");
  write_all(index_path(), index.dump());
  std::string msg = error_of([&] { SafetensorsModel m(folder_); });
  EXPECT_TRUE(Contains(msg, "tensor 'layer.3' is in " + shard(2) + " but not listed"));
}

TEST_F(ShardedModelTest, BadIndex) {
  write_all(index_path(), "{\"weight_map\": ");
  EXPECT_TRUE(Contains(error_of([&] { SafetensorsModel m(folder_); }), index_path()));
  write_all(index_path(), R"({"weight_map":{"layer.0":"../etc/passwd"}})");
  EXPECT_TRUE(Contains(error_of([&] { SafetensorsModel m(folder_); }), "not a file name"));
}

TEST_F(SafetensorsTest, FolderWithoutWeights) {
  std::string msg = error_of([&] { SafetensorsModel m(dir_); });
  EXPECT_TRUE(Contains(msg, dir_ + ": neither model.safetensors nor model.safetensors.index.json"));
  EXPECT_EQ(error_of([&] { SafetensorsModel m(path("missing")); }),
            "cannot open " + path("missing") + ": No such file or directory");
}

TEST_F(SafetensorsTest, WriteFileAtomic) {
  std::string p = path("config.json");
  write_file_atomic(p, "{}\n");
  write_file_atomic(p, "{\"a\": 1}\n");
  EXPECT_EQ(read_all(p), "{\"a\": 1}\n");
  EXPECT_FALSE(fs::exists(p + ".tmp"));
}

}  // namespace
}  // namespace lathe
