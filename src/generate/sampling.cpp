#include "generate/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace lathe {
namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}  // namespace

void validate_sampling(const SamplingParams& p) {
  LATHE_CHECK(p.temperature >= 0 && std::isfinite(p.temperature),
              "--temperature must be >= 0 (0 = greedy), got ", p.temperature);
  LATHE_CHECK(p.top_k >= 0, "--top-k must be >= 0 (0 = off), got ", p.top_k);
  LATHE_CHECK(p.top_p > 0 && p.top_p <= 1, "--top-p must be in (0, 1] (1 = off), got ", p.top_p);
  LATHE_CHECK(p.repetition_penalty > 0 && std::isfinite(p.repetition_penalty),
              "--repetition-penalty must be > 0 (1 = off), got ", p.repetition_penalty);
}

uint64_t sequence_seed(uint64_t seed, uint64_t index) {
  // splitmix64 of (seed, index): nearby seeds and indices give unrelated streams.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void apply_repetition_penalty(float* logits, int64_t V, const std::vector<int32_t>& seen,
                              float penalty) {
  if (penalty == 1.0f) return;
  std::vector<int32_t> ids = seen;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (int32_t id : ids) {
    if (id < 0 || id >= V) continue;
    float& z = logits[id];
    z = z < 0 ? z * penalty : z / penalty;
  }
}

void apply_temperature(float* logits, int64_t V, float temperature) {
  if (temperature == 1.0f) return;
  for (int64_t i = 0; i < V; ++i) logits[i] /= temperature;
}

void apply_top_k(float* logits, int64_t V, int k) {
  if (k <= 0 || k >= V) return;
  std::vector<float> v(logits, logits + V);
  std::nth_element(v.begin(), v.begin() + (k - 1), v.end(), std::greater<float>());
  const float kth = v[size_t(k - 1)];
  for (int64_t i = 0; i < V; ++i)
    if (logits[i] < kth) logits[i] = kNegInf;
}

void apply_top_p(float* logits, int64_t V, float p) {
  if (p >= 1.0f) return;
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] < logits[b]; });
  const float mx = logits[order.back()];
  double total = 0;
  for (int64_t i = 0; i < V; ++i) total += std::exp(double(logits[i]) - mx);
  double cum = 0;
  // The last (most likely) token is never removed, as HF's min_tokens_to_keep = 1.
  for (int64_t r = 0; r + 1 < V; ++r) {
    float& z = logits[order[size_t(r)]];
    cum += std::exp(double(z) - mx) / total;
    if (cum > 1.0 - double(p)) break;
    z = kNegInf;
  }
}

int32_t argmax(const float* logits, int64_t V) {
  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

int32_t sample_softmax(const float* logits, int64_t V, SamplingRng& rng) {
  const float mx = logits[argmax(logits, V)];
  std::vector<double> w(static_cast<size_t>(V));
  double total = 0;
  for (int64_t i = 0; i < V; ++i) total += w[size_t(i)] = std::exp(double(logits[i]) - mx);
  const double u = rng.uniform() * total;
  double cum = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (w[size_t(i)] == 0) continue;
    cum += w[size_t(i)];
    last = i;
    if (u < cum) return int32_t(i);
  }
  return int32_t(last);  // u within rounding of the total
}

int32_t sample_next(float* logits, int64_t V, const SamplingParams& p,
                    const std::vector<int32_t>& seen, SamplingRng& rng) {
  apply_repetition_penalty(logits, V, seen, p.repetition_penalty);
  if (p.temperature == 0) return argmax(logits, V);
  apply_temperature(logits, V, p.temperature);
  apply_top_k(logits, V, p.top_k);
  apply_top_p(logits, V, p.top_p);
  return sample_softmax(logits, V, rng);
}

}  // namespace lathe
