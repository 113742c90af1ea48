// safetensors_write_parallel: processes (threads here, meeting at a real barrier) that
// each write a share of the bytes must produce the file the single writer produces, byte
// for byte, for any number of writers, including shares that cut through bf16 elements.
#include <gtest/gtest.h>

#include <barrier>
#include <fstream>
#include <iterator>
#include <thread>

#include "io/safetensors.h"
#include "model/golden.h"

namespace lathe {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST(ParallelWrite, EqualsTheSingleWriterByteForByte) {
  const std::string dir = testing::temp_dir("parallel_write");
  std::vector<float> a(1001), b(37 * 3), c(1);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(i) * 0.37f - 100.0f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = 1.0f / float(i + 1);
  c[0] = 3.5f;
  for (DType dtype : {DType::F32, DType::BF16}) {
    std::vector<TensorFromF32> tensors = {{"a", dtype, {1001}, a.data()},
                                          {"b.weight", dtype, {37, 3}, b.data()},
                                          {"c", dtype, {1}, c.data()}};
    // The reference: convert, then the single writer.
    std::vector<std::vector<uint8_t>> converted;
    std::vector<TensorToWrite> single;
    for (const TensorFromF32& t : tensors) {
      size_t n = 1;
      for (int64_t d : t.shape) n *= size_t(d);
      converted.emplace_back(n * dtype_size(dtype));
      convert_from_f32(t.data, converted.back().data(), dtype, n);
      single.push_back({t.name, dtype, t.shape, converted.back().data()});
    }
    safetensors_write(dir + "/single.safetensors", single);
    const std::string want = read_all(dir + "/single.safetensors");
    for (int world : {1, 2, 3, 7}) {
      const std::string path = dir + "/parallel_" + std::to_string(world) + ".safetensors";
      std::barrier sync(world);
      std::vector<std::thread> writers;
      for (int r = 0; r < world; ++r)
        writers.emplace_back([&, r] {
          safetensors_write_parallel(path, tensors, r, world, [&] { sync.arrive_and_wait(); });
        });
      for (auto& w : writers) w.join();
      EXPECT_EQ(read_all(path), want) << dtype_name(dtype) << ", " << world << " writers";
      SafetensorsFile check(path);  // and it parses
      EXPECT_EQ(check.tensors().size(), 3u);
    }
  }
}

}  // namespace
}  // namespace lathe
