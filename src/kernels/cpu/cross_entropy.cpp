#include "kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/isa_namespace.h"
#include "kernels/cpu/vec_math.h"

namespace lathe::cpu::LATHE_KERNEL_NS {

double softmax_cross_entropy(float* logits, const int32_t* targets, int64_t M, int64_t V,
                             float scale) {
  // Per-row losses summed in row order afterwards: identical bits on every run.
  std::vector<double> row_loss(M, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    float* z = logits + m * V;
    if (targets[m] < 0) {
      std::memset(z, 0, V * sizeof(float));
      continue;
    }
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, z[v]);
    // -log p_t = log(sum exp(z - max)) + max - z_t, from the raw logit: exp(z_t - max)
    // underflows for targets ~104 nats below the maximum.
    const float zt = z[targets[m]];
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t v = 0; v < V; ++v) {
      z[v] = exp_vec(z[v] - mx);
      sum += z[v];
    }
    row_loss[m] = double(std::log(sum)) + double(mx) - double(zt);
    const float k = scale / sum;
    for (int64_t v = 0; v < V; ++v) z[v] *= k;
    z[targets[m]] -= scale;
  }
  double total = 0;
  for (double l : row_loss) total += l;
  return total;
}

}  // namespace lathe::cpu::LATHE_KERNEL_NS
