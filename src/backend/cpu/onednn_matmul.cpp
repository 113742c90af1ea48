#include "backend/cpu/onednn_matmul.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>

#include "core/error.h"

namespace lathe {

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, float,
                       float>;

struct OnednnMatmul::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  struct Entry {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul prim;
  };
  std::map<Key, Entry> cache;
  std::mutex mu;

  Entry& get(const MatmulArgs& a) {
    Key key{a.M, a.N, a.K, a.lda, a.ldb, a.ldc, a.trans_a, a.trans_b, a.alpha, a.beta};
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    using dims = dnnl::memory::dims;
    using dt = dnnl::memory::data_type;
    // Transposition is expressed through strides: oneDNN reads [M,K] with strides
    // (1, lda) as the transpose of a row-major [K,M] matrix.
    dnnl::memory::desc src({a.M, a.K}, dt::f32, a.trans_a ? dims{1, a.lda} : dims{a.lda, 1});
    dnnl::memory::desc wei({a.K, a.N}, dt::f32, a.trans_b ? dims{1, a.ldb} : dims{a.ldb, 1});
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
      fail("oneDNN could not build a matmul for M=", a.M, " N=", a.N, " K=", a.K, ": ",
           e.what());
    }
  }
};

OnednnMatmul::OnednnMatmul() : impl_(std::make_unique<Impl>()) {}
OnednnMatmul::~OnednnMatmul() = default;

void OnednnMatmul::run(const MatmulArgs& a) {
  if (a.M == 0 || a.N == 0) return;
  Impl::Entry& e = impl_->get(a);
  dnnl::memory src(e.pd.src_desc(), impl_->engine, const_cast<float*>(a.A));
  dnnl::memory wei(e.pd.weights_desc(), impl_->engine, const_cast<float*>(a.B));
  dnnl::memory dst(e.pd.dst_desc(), impl_->engine, a.C);
  e.prim.execute(impl_->stream,
                 {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
  impl_->stream.wait();
}

std::string OnednnMatmul::implementation(const MatmulArgs& a) {
  return impl_->get(a).pd.impl_info_str();
}

}  // namespace lathe
