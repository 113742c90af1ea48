// The fixture of the CUDA-versus-CPU kernel tests: a CPU backend (the oracle) and a CUDA
// one, upload and download, fresh random inputs and a comparison that names the seed. It
// uses only the Backend interface, so the tests compile in every build and skip, with the
// reason, where lathe is built without CUDA or no GPU is present.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.h"

// Skips the calling test (or fixture SetUp), with the reason, where CUDA cannot run.
#ifdef LATHE_HAVE_CUDA
#define LATHE_REQUIRE_CUDA()                                                                 \
  do {                                                                                       \
    if (::lathe::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine"; \
  } while (0)
#else
#define LATHE_REQUIRE_CUDA() \
  GTEST_SKIP() << "built without CUDA (configure with -DLATHE_CUDA=ON on a GPU machine)"
#endif

namespace lathe::test {

class CudaVsCpu : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef LATHE_HAVE_CUDA
    GTEST_SKIP() << "built without CUDA (configure with -DLATHE_CUDA=ON on a GPU machine)";
#else
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
    cpu = make_cpu_backend(0);
    gpu = make_cuda_backend(0);
    seed = std::random_device{}();
    rng.seed(seed);
    RecordProperty("seed", std::to_string(seed));
#endif
  }
  void TearDown() override {
    if (!gpu) return;
    gpu->sync();
    for (void* p : owned_) gpu->free(p);
  }

  // A device copy of v, freed after the test.
  template <class T>
  T* up(const std::vector<T>& v) {
    void* p = gpu->alloc(std::max<size_t>(v.size(), 1) * sizeof(T));
    owned_.push_back(p);
    if (!v.empty()) gpu->copy(p, v.data(), v.size() * sizeof(T));
    return static_cast<T*>(p);
  }
  template <class T>
  std::vector<T> down(const T* d, size_t n) {
    std::vector<T> v(n);
    if (n) gpu->copy(v.data(), d, n * sizeof(T));
    return v;
  }

  // Never zeros: N(0, stddev) or U(lo, hi) from this test's seed.
  std::vector<float> normal(size_t n, float stddev = 1.0f) {
    std::normal_distribution<float> d(0.0f, stddev);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
  }
  std::vector<float> uniform(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
  }
  std::vector<int32_t> ints(size_t n, int32_t lo, int32_t hi) {  // [lo, hi)
    std::uniform_int_distribution<int32_t> d(lo, hi - 1);
    std::vector<int32_t> v(n);
    for (int32_t& x : v) x = d(rng);
    return v;
  }

  // |got − want| ≤ rel · (|want| + rms(want)) everywhere: relative for large values, and
  // relative to the tensor's scale for values that happen to be near zero (a difference of
  // two O(1) terms). Reports the worst element and the seed.
  void expect_close(const std::vector<float>& got, const std::vector<float>& want, float rel,
                    const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    double ss = 0;
    for (float w : want) ss += double(w) * w;
    const double rms = want.empty() ? 0.0 : std::sqrt(ss / double(want.size()));
    size_t bad = 0, worst = 0;
    double worst_ratio = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const double tol = rel * (std::fabs(double(want[i])) + rms) + 1e-30;
      const double err = std::fabs(double(got[i]) - double(want[i]));
      const double ratio = std::isnan(got[i]) != std::isnan(want[i]) ? 1e30 : err / tol;
      if (ratio > 1) ++bad;
      if (ratio > worst_ratio) worst_ratio = ratio, worst = i;
    }
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size()
                       << " elements out of tolerance; worst at " << worst << ": got " << got[worst]
                       << ", want " << want[worst] << " (rel " << rel << ", rms " << rms
                       << "), seed=" << seed;
  }

  std::unique_ptr<Backend> cpu, gpu;
  uint32_t seed = 0;
  std::mt19937 rng;

 private:
  std::vector<void*> owned_;
};

}  // namespace lathe::test
