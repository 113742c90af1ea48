#include <algorithm>
#include <chrono>

#include "backend/backend.h"
#include "core/device_buffer.h"

namespace lathe {

double measure_matmul_peak_gflops(Backend& be, const std::string& precision) {
  // A product of the size that dominates Llama training steps ([tokens, hidden] by
  // [hidden, 4·hidden]), best of several runs. bf16 training on CPUs without bf16 dot
  // products runs its products on bf16-valued fp32 operands, so the same path is timed.
  (void)precision;
  const int64_t M = 1024, N = 4096, K = 1024;
  DeviceBuffer<float> a(be, size_t(M * K)), b(be, size_t(N * K)), c(be, size_t(M * N));
  MatmulArgs args;
  args.M = M, args.N = N, args.K = K;
  args.A = a.get(), args.lda = K;
  args.B = b.get(), args.ldb = K, args.trans_b = true;
  args.C = c.get(), args.ldc = N;
  be.matmul(args);  // builds and caches the primitive
  double best = 0;
  for (int i = 0; i < 8; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    be.matmul(args);
    be.sync();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * double(M) * double(N) * double(K) / dt / 1e9);
  }
  return best;
}

}  // namespace lathe
