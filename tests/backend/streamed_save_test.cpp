// Saves from backend memory stream through a bounded host buffer (io/staged_tensor.h):
// the files are byte for byte those written from host copies, and no copy() reads back
// more than the bound at once. StrictBackend stands in for a GPU's memory.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "backend/strict_backend.h"
#include "core/dtype.h"
#include "io/safetensors.h"
#include "io/staged_tensor.h"
#include "model/golden.h"
#include "train/checkpoint.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using namespace lathe::testing;

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct StreamedSave : ::testing::Test {
  void SetUp() override { safetensors_staging_bytes() = 4096; }
  void TearDown() override { safetensors_staging_bytes() = old; }
  std::vector<float> random(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
  }
  float* upload(const std::vector<float>& v) {
    float* p = static_cast<float*>(strict.alloc(v.size() * 4));
    strict.copy(p, v.data(), v.size() * 4);
    return p;
  }
  const size_t old = safetensors_staging_bytes();
  StrictBackend strict{make_cpu_backend(1)};
};

// 10007 floats (a prime count: the last piece is short) per buffer, 4 KiB pieces.
TEST_F(StreamedSave, CheckpointMatchesHostSaveWithinTheBound) {
  const size_t n = 10007;
  const std::vector<float> p = random(n, 1), m = random(n, 2), v = random(n, 3);
  CheckpointState s;
  s.step = 3;
  s.num_params = n;
  s.model_config_json = "{}";
  const std::string host_dir = temp_dir("streamed_save_host"),
                    dev_dir = temp_dir("streamed_save_dev");
  const std::string host =
      checkpoint_save(host_dir, s, {p.data(), m.data(), v.data(), n, nullptr}, 1);
  strict.reset_largest_read_back();
  const std::string dev =
      checkpoint_save(dev_dir, s, {upload(p), upload(m), upload(v), n, &strict}, 1);
  EXPECT_GT(strict.largest_read_back(), 0u);
  EXPECT_LE(strict.largest_read_back(), 4096u);
  const std::string want = read_bytes(fs::path(host) / "state.safetensors");
  ASSERT_GT(want.size(), 3 * n * 4);
  EXPECT_TRUE(read_bytes(fs::path(dev) / "state.safetensors") == want);
}

// bf16 goes through an fp32 scratch: its copies stay under the bound too, and the bits are
// convert_from_f32's.
TEST_F(StreamedSave, Bf16TensorMatchesHostConversionWithinTheBound) {
  const size_t n = 5003;
  const std::vector<float> x = random(n, 4);
  std::vector<uint16_t> bits(n);
  convert_from_f32(x.data(), bits.data(), DType::BF16, n);
  const std::string dir = temp_dir("streamed_save_bf16");
  safetensors_write(dir + "/host.safetensors", {{"x", DType::BF16, {int64_t(n)}, bits.data()}});
  strict.reset_largest_read_back();
  safetensors_write(dir + "/dev.safetensors",
                    {staged_tensor("x", DType::BF16, {int64_t(n)}, strict, upload(x))});
  EXPECT_GT(strict.largest_read_back(), 0u);
  EXPECT_LE(strict.largest_read_back(), 4096u);
  EXPECT_TRUE(read_bytes(dir + "/dev.safetensors") == read_bytes(dir + "/host.safetensors"));
}

}  // namespace
}  // namespace lathe
