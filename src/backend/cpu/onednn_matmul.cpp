#include "backend/cpu/onednn_matmul.h"

#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/cpu_isa.h"
#include "core/error.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul_bf16_weights.h"
#include "kernels/cpu/quant.h"

namespace lathe {
namespace {

// Up to this many rows, a product against bf16-stored weights on fp32 kernels reads them
// in place (cpu::matmul_bf16_weights); beyond it, oneDNN's fp32 kernels on a widened copy
// are faster, the copy's cost spread over enough rows (bench/kernels/decode_products.cpp).
constexpr int64_t kFewRowsBf16Weights = 64;

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, float,
                       float, bool>;

bool cpu_has_bf16_dot_products() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  return (isa & bf16) == bf16;  // the ISA values are nested bit sets
}

// LATHE_CPU_ISA below what the CPU has caps oneDNN too, so one setting moves every kernel
// of the process to that level (ONEDNN_MAX_CPU_ISA alone caps only oneDNN's).
void cap_onednn_isa() {
  static const bool done = [] {
    if (cpu_isa() < cpu_isa_detected()) {
      const auto cap = cpu_isa() == CpuIsa::Avx2 ? dnnl::cpu_isa::avx2 : dnnl::cpu_isa::sse41;
      // Fails only when oneDNN already fixed its ISA (ONEDNN_MAX_CPU_ISA, or a primitive was
      // built first); then that setting stands.
      try {
        dnnl::set_max_cpu_isa(cap);
      } catch (const dnnl::error&) {
      }
    }
    return true;
  }();
  (void)done;
}

}  // namespace

std::string onednn_cpu_isa_name() {
  cap_onednn_isa();
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

struct OnednnMatmul::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  bool bf16 = false;
  struct Entry {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul prim;
  };
  std::map<Key, Entry> cache;
  std::mutex mu;

  bool use_bf16(const MatmulArgs& a) const { return bf16 && a.bf16_operands; }

  Entry& get(const MatmulArgs& a) {
    const bool b16 = use_bf16(a);
    Key key{a.M, a.N, a.K, a.lda, a.ldb, a.ldc, a.trans_a, a.trans_b, a.alpha, a.beta, b16};
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    using dims = dnnl::memory::dims;
    using dt = dnnl::memory::data_type;
    // Transposition is expressed through strides: oneDNN reads [M,K] with strides
    // (1, lda) as the transpose of a row-major [K,M] matrix. bf16 operands are packed
    // densely first, so their row stride is the stored row length.
    const int64_t lda = b16 ? (a.trans_a ? a.M : a.K) : a.lda;
    const int64_t ldb = b16 ? (a.trans_b ? a.K : a.N) : a.ldb;
    const dt in = b16 ? dt::bf16 : dt::f32;
    dnnl::memory::desc src({a.M, a.K}, in, a.trans_a ? dims{1, lda} : dims{lda, 1});
    dnnl::memory::desc wei({a.K, a.N}, in, a.trans_b ? dims{1, ldb} : dims{ldb, 1});
    dnnl::memory::desc dst({a.M, a.N}, dt::f32, dims{a.ldc, 1});
    dnnl::primitive_attr attr;
    if (a.alpha != 1.0f) attr.set_output_scales(0, {a.alpha});
    if (a.beta != 0.0f) {
      dnnl::post_ops ops;
      ops.append_sum(a.beta);
      attr.set_post_ops(ops);
    }
    try {
      dnnl::matmul::desc desc(src, wei, dst);
      dnnl::matmul::primitive_desc pd(desc, attr, engine);
      auto [pos, _] = cache.emplace(key, Entry{pd, dnnl::matmul(pd)});
      return pos->second;
    } catch (const dnnl::error& e) {
      fail("oneDNN could not build a ", b16 ? "bf16" : "fp32", " matmul for M=", a.M, " N=", a.N,
           " K=", a.K, ": ", e.what());
    }
  }
};

OnednnMatmul::OnednnMatmul(bool allow_bf16) {
  cap_onednn_isa();  // before the engine exists
  impl_ = std::make_unique<Impl>();
  impl_->bf16 = allow_bf16 && cpu_has_bf16_dot_products();
}
OnednnMatmul::~OnednnMatmul() = default;

bool OnednnMatmul::bf16_kernels() const { return impl_->bf16; }

void OnednnMatmul::run(const MatmulArgs& args) {
  if (args.M == 0 || args.N == 0) return;
  MatmulArgs a = args;
  const int64_t rb = a.trans_b ? a.N : a.K, cb = a.trans_b ? a.K : a.N;
  if (!a.B && !impl_->use_bf16(a) && a.B_bf16 && a.trans_b && !a.trans_a && a.alpha == 1.0f &&
      a.M <= kFewRowsBf16Weights) {
    // A few rows (generation, serving) against bf16-stored weights on fp32 kernels: read
    // the bf16 weights as they are (kernels/cpu/matmul_bf16_weights.h).
    LATHE_CHECK(a.bf16_operands, "bf16-stored weights in a product without bf16 operands");
    cpu::matmul_bf16_weights(a.C, a.A, a.B_bf16, a.M, a.N, a.K, a.lda, a.ldb, a.ldc, a.beta);
    return;
  }
  if (!a.B && !impl_->use_bf16(a)) {
    // bf16-stored weights on fp32 kernels: widened (exactly) into a dense fp32 copy.
    LATHE_CHECK(a.B_bf16 && a.bf16_operands, "matmul without a B operand");
    thread_local std::vector<float> wide;
    wide.resize(size_t(rb * cb));
    cpu::dequantize_bf16(wide.data(), a.B_bf16, size_t(rb * cb));
    a.B = wide.data(), a.ldb = cb, a.B_bf16 = nullptr;
  }
  Impl::Entry& e = impl_->get(a);
  void* A = const_cast<float*>(a.A);
  void* B = const_cast<float*>(a.B);
  if (impl_->use_bf16(a)) {
    // The operands already hold bf16 values; packing them costs about 1% of the product
    // (it reads each element once, the product reads it N or M times).
    // One scratch per thread: products may be issued from more than one thread.
    thread_local std::vector<uint16_t> sa, sb;
    const int64_t ra = a.trans_a ? a.K : a.M, ca = a.trans_a ? a.M : a.K;
    sa.resize(size_t(ra * ca));
    cpu::pack_bf16(sa.data(), a.A, ra, ca, a.lda);
    A = sa.data();
    if (a.B_bf16) {
      B = const_cast<uint16_t*>(a.B_bf16);
    } else {
      sb.resize(size_t(rb * cb));
      cpu::pack_bf16(sb.data(), a.B, rb, cb, a.ldb);
      B = sb.data();
    }
  }
  dnnl::memory src(e.pd.src_desc(), impl_->engine, A);
  dnnl::memory wei(e.pd.weights_desc(), impl_->engine, B);
  dnnl::memory dst(e.pd.dst_desc(), impl_->engine, a.C);
  e.prim.execute(impl_->stream,
                 {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
  impl_->stream.wait();
}

std::string OnednnMatmul::implementation(const MatmulArgs& a) {
  return impl_->get(a).pd.impl_info_str();
}

}  // namespace lathe
