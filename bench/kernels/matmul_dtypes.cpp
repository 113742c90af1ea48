// Kernel lab: oneDNN's matmul primitive in f32 and in bf16 (bf16 inputs, f32 output) on
// this CPU, for the product sizes of the 56M bench model: whether bf16 kernels pay here
// (AVX512_BF16 / AMX: about 2x fp32) or are emulated (slower than fp32); see
// docs/training.md.
//   build/bench_matmul_dtypes
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

using namespace dnnl;

double gflops(memory::data_type in, int64_t M, int64_t N, int64_t K) {
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  memory::desc a({M, K}, in, {K, 1}), b({K, N}, in, {1, K}), c({M, N}, memory::data_type::f32, {N, 1});
  matmul::primitive_desc pd(matmul::desc(a, b, c), eng);
  matmul mm(pd);
  memory A(a, eng), B(b, eng), C(c, eng);
  std::memset(A.get_data_handle(), 0, a.get_size());
  std::memset(B.get_data_handle(), 0, b.get_size());
  double best = 1e9;
  for (int i = 0; i < 12; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    mm.execute(s, {{DNNL_ARG_SRC, A}, {DNNL_ARG_WEIGHTS, B}, {DNNL_ARG_DST, C}});
    s.wait();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("%-5s M=%-5lld N=%-6lld K=%-5lld %-22s %7.1f GFLOP/s\n",
              in == memory::data_type::f32 ? "f32" : "bf16", (long long)M, (long long)N,
              (long long)K, pd.impl_info_str(), 2.0 * M * N * K / best / 1e9);
  return 2.0 * M * N * K / best / 1e9;
}

int main() {
  const int64_t shapes[][3] = {{1024, 4096, 1024}, {1024, 2752, 512}, {1024, 512, 1376}, {256, 32000, 512}};
  for (auto& s : shapes) {
    gflops(memory::data_type::f32, s[0], s[1], s[2]);
    gflops(memory::data_type::bf16, s[0], s[1], s[2]);
  }
}
