#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "core/paths.h"

namespace lathe {

double measure_matmul_peak_gflops(Backend& be, const std::string& precision) {
  // A product of the size that dominates Llama training steps ([tokens, hidden] by
  // [hidden, 4·hidden]), best of several runs, on the kernels training in this precision
  // uses: bf16 ones where the backend has them, else fp32 ones on bf16-valued operands.
  const int64_t M = 1024, N = 4096, K = 1024;
  DeviceBuffer<float> a(be, size_t(M * K)), b(be, size_t(N * K)), c(be, size_t(M * N));
  MatmulArgs args;
  args.M = M, args.N = N, args.K = K;
  args.A = a.get(), args.lda = K;
  args.B = b.get(), args.ldb = K, args.trans_b = true;
  args.C = c.get(), args.ldc = N;
  args.bf16_operands = precision == "bf16";
  be.matmul(args);  // builds and caches the primitive
  double best = 0;
  for (int i = 0; i < 24; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    be.matmul(args);
    be.sync();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * double(M) * double(N) * double(K) / dt / 1e9);
  }
  return best;
}

}  // namespace lathe

namespace lathe {

std::string matmul_peak_cache_path(const Backend& be, const std::string& precision) {
  // The kernels differ by precision only where the backend has bf16 ones.
  const std::string kind = precision == "bf16" && be.bf16_kernels() ? "_bf16" : "";
  return user_cache_dir() + "/matmul_peak_" + be.name() + kind + "_t" +
         std::to_string(be.threads()) + ".txt";
}

double matmul_peak_gflops_cached(Backend& be, const std::string& precision, bool remeasure) {
  // Measuring takes a fraction of a second of full load; training start-up should not
  // pay it every time, so the value `lathe bench --peak` (or the first run) measured is
  // kept per machine and thread count.
  const std::string path = matmul_peak_cache_path(be, precision);
  if (!remeasure) {
    std::ifstream f(path);
    double v = 0;
    if (f >> v && v > 0) return v;
  }
  const double v = measure_matmul_peak_gflops(be, precision);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream(path) << v << "\n";
  return v;
}

}  // namespace lathe
