// Shared helpers for the CPU kernel tests: seeded inputs, central finite differences of
// double-precision reference losses, and tolerance checks that name the worst element.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

namespace lathe::test {

inline std::vector<float> uniform(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<float> normal(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

inline std::vector<float> to_float(const std::vector<double>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = float(v[i]);
  return out;
}

// sum(out * r): the scalar loss whose gradient with respect to out is r.
inline double weighted_sum(const std::vector<double>& out, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < out.size(); ++i) s += out[i] * double(r[i]);
  return s;
}

// Central difference of loss(x) at the given coordinates (all when `which` is empty).
// In double with eps ~1e-5 the truncation error (~eps²) and the rounding error
// (~1e-16·|L|/eps) are both far below the fp32 error of the kernels being checked.
template <class Loss>
std::vector<double> fd_gradient(Loss&& loss, std::vector<double> x, double eps,
                                const std::vector<size_t>& which = {}) {
  std::vector<double> g(x.size(), 0.0);
  auto probe = [&](size_t i) {
    const double x0 = x[i];
    x[i] = x0 + eps;
    const double lp = loss(x);
    x[i] = x0 - eps;
    const double lm = loss(x);
    x[i] = x0;
    g[i] = (lp - lm) / (2 * eps);
  };
  if (which.empty()) {
    for (size_t i = 0; i < x.size(); ++i) probe(i);
  } else {
    for (size_t i : which) probe(i);
  }
  return g;
}

// Distinct coordinates in [0, n), sorted, for finite differences too costly to take on all.
inline std::vector<size_t> sample_indices(size_t n, size_t count, uint32_t seed) {
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = i;
  std::mt19937 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(std::min(n, count));
  std::sort(all.begin(), all.end());
  return all;
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Passes when |got[i] - want[i]| <= atol + rtol·|want[i]| for every i in `which` (all when
// empty); otherwise reports how many failed and the worst one.
template <class Got, class Want>
::testing::AssertionResult all_close(const Got& got, const Want& want, double rtol, double atol,
                                     const std::vector<size_t>& which = {}) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  size_t bad = 0, worst = 0;
  double worst_excess = -std::numeric_limits<double>::infinity();
  auto check = [&](size_t i) {
    const double g = double(got[i]), w = double(want[i]);
    const double err = std::fabs(g - w), tol = atol + rtol * std::fabs(w);
    const double excess = std::isnan(err) ? std::numeric_limits<double>::infinity() : err - tol;
    if (!(err <= tol)) ++bad;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  };
  if (which.empty()) {
    for (size_t i = 0; i < got.size(); ++i) check(i);
  } else {
    for (size_t i : which) check(i);
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os.precision(9);
  os << bad << " element(s) out of tolerance (rtol " << rtol << ", atol " << atol << "); worst at ["
     << worst << "]: got " << double(got[worst]) << ", want " << double(want[worst]);
  return ::testing::AssertionFailure() << os.str();
}

// Passes when |got[i] - want[i]| <= tol[i] for every i: for results whose error scale
// differs per element (e.g. the sum of |terms| of a cancelling sum).
template <class Got, class Want>
::testing::AssertionResult within(const Got& got, const Want& want,
                                  const std::vector<double>& tol) {
  if (got.size() != want.size() || got.size() != tol.size())
    return ::testing::AssertionFailure() << "sizes differ";
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(double(got[i]) - double(want[i])) <= tol[i]) && bad++ == 0) first = i;
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os.precision(9);
  os << bad << " element(s) out of tolerance; first at [" << first << "]: got "
     << double(got[first]) << ", want " << double(want[first]) << ", tolerance " << tol[first];
  return ::testing::AssertionFailure() << os.str();
}

}  // namespace lathe::test
