// The CUDA backend's matrix products against the CPU backend. Needs a GPU: skipped,
// with the reason printed, when lathe is built without CUDA or no device is present.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"

namespace lathe {
namespace {

TEST(CudaBackend, MatmulMatchesCpuForEveryTransposeAndBeta) {
#ifndef LATHE_HAVE_CUDA
  GTEST_SKIP() << "built without CUDA (configure with -DLATHE_CUDA=ON on a GPU machine)";
#else
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  auto cpu = make_cpu_backend(2);
  auto gpu = make_cuda_backend(0);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  const int64_t M = 67, N = 45, K = 91;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 1.0f}) {
        std::vector<float> a(size_t(M * K)), b(size_t(K * N)), c(size_t(M * N));
        for (float& x : a) x = nd(rng);
        for (float& x : b) x = nd(rng);
        for (float& x : c) x = nd(rng);
        MatmulArgs args;
        args.M = M, args.N = N, args.K = K, args.trans_a = ta, args.trans_b = tb;
        args.lda = ta ? M : K, args.ldb = tb ? K : N, args.ldc = N, args.beta = beta;
        std::vector<float> want = c;
        args.A = a.data(), args.B = b.data(), args.C = want.data();
        cpu->matmul(args);
        float *da = static_cast<float*>(gpu->alloc(a.size() * 4)),
              *db = static_cast<float*>(gpu->alloc(b.size() * 4)),
              *dc = static_cast<float*>(gpu->alloc(c.size() * 4));
        gpu->copy(da, a.data(), a.size() * 4);
        gpu->copy(db, b.data(), b.size() * 4);
        gpu->copy(dc, c.data(), c.size() * 4);
        args.A = da, args.B = db, args.C = dc;
        gpu->matmul(args);
        std::vector<float> got(c.size());
        gpu->copy(got.data(), dc, got.size() * 4);
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 1e-4f * (1 + std::fabs(want[i])))
              << "ta=" << ta << " tb=" << tb << " beta=" << beta << " at " << i;
        gpu->free(da), gpu->free(db), gpu->free(dc);
      }
#endif
}

}  // namespace
}  // namespace lathe
