// The matrix-product peak MFU is measured against: never cached lower than an earlier
// measurement, raised when a step runs faster than it, so no MFU figure exceeds 100%.
#include "backend/peak.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "backend/backend.h"
#include "core/json.h"
#include "model/golden.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

// Points the user cache folder at a fresh directory for one test, and back after.
class ScopedCacheDir {
 public:
  explicit ScopedCacheDir(const std::string& dir) {
    if (const char* old = std::getenv("XDG_CACHE_HOME")) old_ = old, had_ = true;
    fs::create_directories(dir);
    setenv("XDG_CACHE_HOME", dir.c_str(), 1);
  }
  ~ScopedCacheDir() {
    if (had_)
      setenv("XDG_CACHE_HOME", old_.c_str(), 1);
    else
      unsetenv("XDG_CACHE_HOME");
  }

 private:
  std::string old_;
  bool had_ = false;
};

double read_value(const std::string& path) {
  std::ifstream f(path);
  double v = 0;
  f >> v;
  return v;
}

void write_value(const std::string& path, double v) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << v << "\n";
}

TEST(MatmulPeak, RemeasuringNeverLowersTheCachedValue) {
  ScopedCacheDir cache(testing::temp_dir("peak_never_lower"));
  auto be = make_cpu_backend(1);
  const std::string path = matmul_peak_cache_path(*be, "fp32");
  // Far above anything a CPU reaches: a re-measurement must not replace it.
  write_value(path, 1e7);
  const MatmulPeak p = matmul_peak(*be, "fp32", /*remeasure=*/true);
  EXPECT_TRUE(p.measured);
  EXPECT_GT(p.measured_gflops, 0.0);
  EXPECT_LT(p.measured_gflops, 1e7);
  EXPECT_EQ(p.gflops, 1e7);
  EXPECT_EQ(read_value(path), 1e7);
  std::printf("[ reached ] measured %.1f GFLOP/s, kept the cached 1e7\n", p.measured_gflops);
}

TEST(MatmulPeak, ARateAboveThePeakRaisesIt) {
  ScopedCacheDir cache(testing::temp_dir("peak_raise"));
  auto be = make_cpu_backend(1);
  const std::string path = matmul_peak_cache_path(*be, "fp32");
  write_value(path, 0.5);  // as if measured while the machine was busy
  const MatmulPeak low = matmul_peak(*be, "fp32", /*remeasure=*/false);
  EXPECT_FALSE(low.measured);
  EXPECT_EQ(low.gflops, 0.5);
  EXPECT_NE(low.describe().find(path), std::string::npos);
  const MatmulPeak raised = raise_matmul_peak(*be, "fp32", low, 3.0);
  EXPECT_GE(raised.gflops, 3.0);
  EXPECT_GE(raised.gflops, raised.measured_gflops);
  EXPECT_NEAR(read_value(path), raised.gflops, 1e-6 * raised.gflops);
  // A rate above even the re-measured peak becomes the peak itself.
  const MatmulPeak above = raise_matmul_peak(*be, "fp32", raised, raised.gflops * 4);
  EXPECT_EQ(above.gflops, raised.gflops * 4);
  EXPECT_LE(raised.gflops * 4 / above.gflops, 1.0);
}

// A training run whose cached peak is absurdly low: every MFU it logs stays <= 1, it says
// that it re-measured, and the cache now holds a real measurement.
TEST(MatmulPeak, TrainingNeverLogsMfuAboveOne) {
  const std::string dir = testing::temp_dir("peak_train");
  ScopedCacheDir cache(dir + "/cache");
  auto be = make_cpu_backend(1);
  const std::string path = matmul_peak_cache_path(*be, "fp32");
  write_value(path, 1e-3);
  const std::string golden = testing::golden_dir("gqa_untied");
  const std::string cmd = std::string("XDG_CACHE_HOME=") + dir + "/cache " + LATHE_BINARY +
                          " train /dev/null model.path=" + golden + "/model data.train=" + golden +
                          "/train/data.jsonl data.seq_len=24 train.batch_size=2 train.threads=1 "
                          "train.precision=fp32 train.max_steps=3 output.dir=" +
                          dir + "/run 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ASSERT_EQ(pclose(p), 0) << out;
  EXPECT_NE(out.find("MFU against the matrix-product peak"), std::string::npos) << out;
  EXPECT_NE(out.find("re-measured"), std::string::npos) << out;
  std::ifstream metrics(dir + "/run/metrics.jsonl");
  std::string line;
  int steps = 0;
  while (std::getline(metrics, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (!j.contains("mfu")) continue;
    ++steps;
    EXPECT_GT(j.at("mfu").get<double>(), 0.0) << line;
    EXPECT_LE(j.at("mfu").get<double>(), 1.0) << line;
  }
  EXPECT_EQ(steps, 3);
  EXPECT_GT(read_value(path), 1e-3);
}

}  // namespace
}  // namespace lathe
