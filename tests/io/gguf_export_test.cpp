// The GGUF writer's layout, read back by a small reader written from the format's
// description, and `export_gguf` on the bundled stories260K: names, shapes, types, the RoPE
// row permutation, and the errors a user can cause. tests/io/gguf_export_test.py reads the
// same files with llama.cpp's own Python package (gguf-py), and tests/io/llama_cpp.sh runs
// them in llama.cpp.
#include "io/gguf_export.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

const std::string kStories = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K";

struct GgufTensor {
  std::vector<uint64_t> dims;  // innermost first
  uint32_t type = 0;
  uint64_t offset = 0;
};

struct GgufFile {
  std::string bytes;
  uint32_t version = 0;
  std::map<std::string, std::pair<uint32_t, std::string>> kv;  // key -> (type, raw value)
  std::map<std::string, GgufTensor> tensors;
  std::vector<std::string> tensor_order;
  uint64_t data_start = 0;

  template <class T>
  T scalar(const std::string& key) const {
    T v;
    std::memcpy(&v, kv.at(key).second.data(), sizeof(T));
    return v;
  }
  std::string str(const std::string& key) const { return kv.at(key).second.substr(8); }
  const uint8_t* data(const std::string& name) const {
    return reinterpret_cast<const uint8_t*>(bytes.data()) + data_start + tensors.at(name).offset;
  }
};

// GGUF v3 as documented in ggml's docs/gguf.md.
GgufFile read_gguf(const std::string& path) {
  GgufFile f;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  f.bytes = ss.str();
  size_t pos = 0;
  auto take = [&](size_t n) {
    if (pos + n > f.bytes.size()) throw std::runtime_error("truncated GGUF");
    std::string s = f.bytes.substr(pos, n);
    pos += n;
    return s;
  };
  auto u32 = [&] {
    uint32_t v;
    std::memcpy(&v, take(4).data(), 4);
    return v;
  };
  auto u64 = [&] {
    uint64_t v;
    std::memcpy(&v, take(8).data(), 8);
    return v;
  };
  auto str = [&] { return take(u64()); };
  EXPECT_EQ(take(4), "GGUF");
  f.version = u32();
  const uint64_t n_tensors = u64(), n_kv = u64();
  std::function<std::string(uint32_t)> value = [&](uint32_t type) -> std::string {
    static const std::map<uint32_t, size_t> sizes = {
        {0, 1}, {1, 1}, {2, 2}, {3, 2}, {4, 4}, {5, 4}, {6, 4}, {7, 1}, {10, 8}, {11, 8}, {12, 8}};
    if (type == 8) {
      const size_t start = pos;
      str();
      return f.bytes.substr(start, pos - start);
    }
    if (type == 9) {
      const size_t start = pos;
      const uint32_t elem = u32();
      const uint64_t n = u64();
      for (uint64_t i = 0; i < n; ++i) value(elem);
      return f.bytes.substr(start, pos - start);
    }
    return take(sizes.at(type));
  };
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = str();
    const uint32_t type = u32();
    f.kv[key] = {type, value(type)};
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string name = str();
    GgufTensor t;
    const uint32_t n_dims = u32();
    for (uint32_t d = 0; d < n_dims; ++d) t.dims.push_back(u64());
    t.type = u32();
    t.offset = u64();
    f.tensors[name] = t;
    f.tensor_order.push_back(name);
  }
  f.data_start = (pos + 31) / 32 * 32;
  return f;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a lathe::Error";
  return "";
}

class GgufExport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lathe_gguf_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(GgufExport, WriterLayoutIsAligned) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 5);
  w.add_f32s("tokenizer.ggml.scores", {0.5f, -1.0f});
  const std::vector<float> a = {1, 2, 3};  // 12 bytes: the next tensor starts at 32
  w.add_tensor("a", GgmlType::F32, {3},
               [&](int64_t, int64_t, uint8_t* out) { std::memcpy(out, a.data(), 12); });
  w.add_tensor("b", GgmlType::F16, {2, 4}, [&](int64_t r0, int64_t n, uint8_t* out) {
    for (int64_t r = 0; r < n; ++r)
      for (int c = 0; c < 4; ++c) {
        const uint16_t h = uint16_t(0x3C00 + (r0 + r) * 4 + c);
        std::memcpy(out + (r * 4 + c) * 2, &h, 2);
      }
  });
  const std::string path = (dir_ / "t.gguf").string();
  const uint64_t bytes = w.write(path);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const GgufFile f = read_gguf(path);
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(bytes, f.bytes.size());
  EXPECT_EQ(f.str("general.architecture"), "llama");
  EXPECT_EQ(f.scalar<uint32_t>("llama.block_count"), 5u);
  EXPECT_EQ(f.kv.at("tokenizer.ggml.scores").first, 9u);
  EXPECT_EQ(f.data_start % 32, 0u);
  EXPECT_EQ(f.tensors.at("a").offset, 0u);
  EXPECT_EQ(f.tensors.at("b").offset, 32u);
  EXPECT_EQ(f.tensors.at("b").dims, (std::vector<uint64_t>{4, 2}));  // innermost first
  EXPECT_EQ(f.tensors.at("b").type, 1u);
  EXPECT_EQ(std::memcmp(f.data("a"), a.data(), 12), 0);
  uint16_t last;
  std::memcpy(&last, f.data("b") + 14, 2);
  EXPECT_EQ(last, 0x3C00 + 7);
  EXPECT_EQ(f.bytes.size(), f.data_start + 32 + 32);  // each tensor padded to 32
}

TEST_F(GgufExport, WriterNamesTheFileItCannotWrite) {
  GgufWriter w;
  w.add_u32("k", 1);
  const std::string path = (dir_ / "missing" / "sub" / "t.gguf").string();
  const std::string msg = error_of([&] { w.write(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST_F(GgufExport, Stories260KF32NamesShapesAndPermutation) {
  const std::string out = (dir_ / "s.gguf").string();
  GgufExportOptions o;
  o.type = "f32";
  const GgufExportReport r = export_gguf(kStories, out, o);
  EXPECT_EQ(r.parameters, 260032);  // stories260K
  const GgufFile f = read_gguf(out);
  EXPECT_EQ(f.str("general.name"), "stories260K");
  EXPECT_EQ(f.str("general.size_label"), "260K");
  EXPECT_EQ(f.str("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f.scalar<uint32_t>("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(f.scalar<uint32_t>("llama.rope.dimension_count"), 8u);
  EXPECT_EQ(f.tensors.size(), 2u + 5 * 9);  // tied: no output.weight
  EXPECT_EQ(f.tensors.count("output.weight"), 0u);
  EXPECT_EQ(f.tensors.at("blk.0.ffn_down.weight").dims, (std::vector<uint64_t>{172, 64}));

  const SafetensorsModel st(kStories);
  const TensorInfo& q = st.get("model.layers.3.self_attn.q_proj.weight");  // [64, 64], 8 heads
  const TensorInfo& k = st.get("model.layers.3.self_attn.k_proj.weight");  // [32, 64], 4 heads
  const float* gq = reinterpret_cast<const float*>(f.data("blk.3.attn_q.weight"));
  const float* gk = reinterpret_cast<const float*>(f.data("blk.3.attn_k.weight"));
  const float* hq = static_cast<const float*>(q.data);
  const float* hk = static_cast<const float*>(k.data);
  // Head h's GGUF rows interleave its two HF halves: row 2i from HF row i, 2i+1 from D/2 + i.
  for (int h = 0; h < 8; ++h)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 2; ++j)
        ASSERT_EQ(std::memcmp(gq + (h * 8 + 2 * i + j) * 64, hq + (h * 8 + j * 4 + i) * 64, 256),
                  0);
  for (int h = 0; h < 4; ++h)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 2; ++j)
        ASSERT_EQ(std::memcmp(gk + (h * 8 + 2 * i + j) * 64, hk + (h * 8 + j * 4 + i) * 64, 256),
                  0);
  const TensorInfo& v = st.get("model.layers.3.self_attn.v_proj.weight");
  EXPECT_EQ(std::memcmp(f.data("blk.3.attn_v.weight"), v.data, v.nbytes), 0);
}

TEST_F(GgufExport, Stories260KQuantizedTypesAndFallbacks) {
  GgufExportOptions o;
  o.type = "q4_k";
  const std::string out = (dir_ / "q.gguf").string();
  const GgufExportReport r = export_gguf(kStories, out, o);
  const GgufFile f = read_gguf(out);
  EXPECT_EQ(f.scalar<uint32_t>("general.file_type"), 15u);
  // 64-wide rows: q4_K's 256-blocks do not fit, q5_0 does; ffn_down's 172: only f16.
  EXPECT_EQ(f.tensors.at("blk.0.attn_q.weight").type, uint32_t(GgmlType::Q5_0));
  EXPECT_EQ(f.tensors.at("blk.0.ffn_down.weight").type, uint32_t(GgmlType::F16));
  EXPECT_EQ(f.tensors.at("blk.0.attn_norm.weight").type, uint32_t(GgmlType::F32));
  int fallbacks = 0;
  for (const GgufTensorReport& t : r.tensors) fallbacks += !t.fallback.empty();
  EXPECT_EQ(fallbacks, 1 + 5 * 7);  // every weight but the norms
  o.type = "q8_0";
  export_gguf(kStories, out, o);
  const GgufFile g = read_gguf(out);
  EXPECT_EQ(g.tensors.at("token_embd.weight").type, uint32_t(GgmlType::Q8_0));
  EXPECT_EQ(g.tensors.at("blk.4.ffn_down.weight").type, uint32_t(GgmlType::F16));
  EXPECT_EQ(g.scalar<uint32_t>("general.quantization_version"), 2u);
}

// A copy of stories260K with config.json edited, and the weights rewritten to match.
void write_model(const fs::path& dir, int64_t hidden, int64_t inter, int64_t heads, int64_t kv,
                 int64_t head_dim) {
  fs::create_directories(dir);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(fs::path(kStories) / f, dir / f);
  nlohmann::json c = nlohmann::json::parse(std::ifstream(fs::path(kStories) / "config.json"));
  c["hidden_size"] = hidden, c["intermediate_size"] = inter, c["num_attention_heads"] = heads;
  c["num_key_value_heads"] = kv, c["head_dim"] = head_dim, c["num_hidden_layers"] = 1;
  std::ofstream(dir / "config.json") << c.dump();
  const int64_t V = 512;
  std::vector<std::vector<float>> keep;
  std::vector<TensorToWrite> t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    keep.emplace_back(size_t(n), 0.01f);
    t.emplace_back(name, DType::F32, shape, keep.back().data());
  };
  keep.reserve(16);
  add("model.embed_tokens.weight", {V, hidden});
  add("model.layers.0.input_layernorm.weight", {hidden});
  add("model.layers.0.self_attn.q_proj.weight", {heads * head_dim, hidden});
  add("model.layers.0.self_attn.k_proj.weight", {kv * head_dim, hidden});
  add("model.layers.0.self_attn.v_proj.weight", {kv * head_dim, hidden});
  add("model.layers.0.self_attn.o_proj.weight", {hidden, heads * head_dim});
  add("model.layers.0.post_attention_layernorm.weight", {hidden});
  add("model.layers.0.mlp.gate_proj.weight", {inter, hidden});
  add("model.layers.0.mlp.up_proj.weight", {inter, hidden});
  add("model.layers.0.mlp.down_proj.weight", {hidden, inter});
  add("model.norm.weight", {hidden});
  safetensors_write((dir / "model.safetensors").string(), t);
}

TEST_F(GgufExport, ErrorsNameWhatIsWrong) {
  const std::string out = (dir_ / "x.gguf").string();
  GgufExportOptions o;
  o.type = "q3_k";
  std::string msg = error_of([&] { export_gguf(kStories, out, o); });
  EXPECT_NE(msg.find("--type q3_k"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f32, f16, bf16, q8_0, q4_0, q4_k"), std::string::npos) << msg;

  o.type = "f16";
  msg = error_of([&] { export_gguf((dir_ / "nowhere").string(), out, o); });
  EXPECT_NE(msg.find("nowhere: not a folder"), std::string::npos) << msg;
  fs::create_directories(dir_ / "empty");
  msg = error_of([&] { export_gguf((dir_ / "empty").string(), out, o); });
  EXPECT_NE(msg.find("empty: no config.json"), std::string::npos) << msg;

  // Rows of 48 and 100 values: no 32-block fits, so q8_0 would be all f16.
  write_model(dir_ / "odd_sizes", 48, 100, 4, 4, 12);
  export_gguf((dir_ / "odd_sizes").string(), out, o);  // f16 is fine
  for (const char* type : {"q8_0", "q4_0", "q4_k"}) {
    o.type = type;
    msg = error_of([&] { export_gguf((dir_ / "odd_sizes").string(), out, o); });
    EXPECT_NE(msg.find(std::string("no weight of this model can be stored as ") + type),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("48 (hidden_size) or 100 (intermediate_size)"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(out + ".tmp"));

  write_model(dir_ / "odd_head", 64, 128, 8, 8, 7);
  o.type = "f16";
  msg = error_of([&] { export_gguf((dir_ / "odd_head").string(), out, o); });
  EXPECT_NE(msg.find("head_dim 7 is odd"), std::string::npos) << msg;
}

}  // namespace
}  // namespace lathe
