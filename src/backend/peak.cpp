#include "backend/peak.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "backend/device_buffer.h"
#include "core/cpu_isa.h"
#include "core/paths.h"

namespace lathe {
namespace {

// A first measurement of 95 GFLOP/s was followed by one of 170 on the same 2-core AVX2
// machine: the first products of a process run before the threads and clocks are up,
// and a few runs can all land in a noisy moment. So: a warm-up of at least 0.3 s, then
// the best of at least 24 runs spread over at least 1.5 s (capped at 6 s).
constexpr int kPeakMinReps = 24;
constexpr double kPeakWarmupSeconds = 0.3, kPeakMinSeconds = 1.5, kPeakMaxSeconds = 6.0;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool bf16_kernels_for(const Backend& be, const std::string& precision) {
  return precision == "bf16" && be.bf16_kernels();
}

std::string kernels_for(const Backend& be, const std::string& precision) {
  return be.name() + (bf16_kernels_for(be, precision) ? " bf16" : " fp32") + " kernels (" +
         be.matmul_kernels() + ")";
}

// The machine, as far as the cache key needs it: the CPU model for CPU backends, so a home
// folder shared between machines keeps one value per kind of machine.
std::string machine_key(const Backend& be) {
  const std::string what = be.name() == "cpu" ? cpu_model_name() : be.description();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016zx", std::hash<std::string>{}(what));
  return std::string(hex, 8);
}

double read_cached(const std::string& path) {
  std::ifstream f(path);
  double v = 0;
  return f >> v && v > 0 ? v : 0.0;
}

void write_cached(const std::string& path, double v) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  // Written beside and renamed, so a concurrent reader sees the old value or the new one.
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp);
    f.precision(10);
    f << v << "\n";
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

}  // namespace

double measure_matmul_peak_gflops(Backend& be, const std::string& precision) {
  // A product of the size that dominates Llama training steps ([tokens, hidden] by
  // [hidden, 4·hidden]), on the kernels training in this precision uses: bf16 ones where
  // the backend has them, else fp32 ones on bf16-valued operands.
  const int64_t M = kPeakM, N = kPeakN, K = kPeakK;
  DeviceBuffer<float> a(be, size_t(M * K)), b(be, size_t(N * K)), c(be, size_t(M * N));
  MatmulArgs args;
  args.M = M, args.N = N, args.K = K;
  args.A = a.get(), args.lda = K;
  args.B = b.get(), args.ldb = K, args.trans_b = true;
  args.C = c.get(), args.ldc = N;
  args.bf16_operands = precision == "bf16";
  const double flop = 2.0 * double(M) * double(N) * double(K);
  const auto warm0 = std::chrono::steady_clock::now();
  do {
    be.matmul(args);  // the first call builds and caches the primitive
    be.sync();
  } while (seconds_since(warm0) < kPeakWarmupSeconds);
  double best = 0;
  const auto t_start = std::chrono::steady_clock::now();
  for (int rep = 0;; ++rep) {
    const double elapsed = seconds_since(t_start);
    if ((rep >= kPeakMinReps && elapsed >= kPeakMinSeconds) || elapsed >= kPeakMaxSeconds) break;
    const auto t0 = std::chrono::steady_clock::now();
    be.matmul(args);
    be.sync();
    best = std::max(best, flop / seconds_since(t0) / 1e9);
  }
  return best;
}

std::string matmul_peak_cache_path(const Backend& be, const std::string& precision) {
  // The kernels differ by precision only where the backend has bf16 ones.
  const std::string kind = bf16_kernels_for(be, precision) ? "_bf16" : "";
  std::string lib = be.matmul_kernels();
  for (char& ch : lib)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return user_cache_dir() + "/matmul_peak_" + be.name() + kind + "_" + lib + "_t" +
         std::to_string(be.threads()) + "_" + machine_key(be) + ".txt";
}

std::string MatmulPeak::describe() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f GFLOP/s", gflops);
  return std::string(buf) + ", " + kernels + ", " +
         (measured ? "measured now, saved to " : "from ") + path;
}

MatmulPeak matmul_peak(Backend& be, const std::string& precision, bool remeasure) {
  MatmulPeak p;
  p.path = matmul_peak_cache_path(be, precision);
  p.kernels = kernels_for(be, precision);
  const double cached = read_cached(p.path);
  if (cached > 0 && !remeasure) {
    p.gflops = cached;
    return p;
  }
  const double now = measure_matmul_peak_gflops(be, precision);
  p.measured = true;
  p.measured_gflops = now;
  p.gflops = std::max(cached, now);
  if (p.gflops > cached) write_cached(p.path, p.gflops);
  return p;
}

MatmulPeak raise_matmul_peak(Backend& be, const std::string& precision, const MatmulPeak& peak,
                             double achieved_gflops) {
  MatmulPeak p = matmul_peak(be, precision, /*remeasure=*/true);
  p.gflops = std::max({p.gflops, peak.gflops, achieved_gflops});
  if (p.gflops > read_cached(p.path)) write_cached(p.path, p.gflops);
  return p;
}

}  // namespace lathe
