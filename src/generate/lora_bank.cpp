#include "generate/lora_bank.h"

#include "backend/host_staging.h"
#include "core/error.h"
#include "io/peft_adapter.h"

namespace lathe {

LoraBank::LoraBank(const LlamaModel& base, Backend& be)
    : cfg_(base.config()), be_(be), bf16_(base.precision() == Precision::BF16) {
  LATHE_CHECK(!base.has_adapters(),
              "the served base model must be loaded without adapters of its own");
}

int LoraBank::add(const std::string& name, const std::string& dir) {
  for (const Adapter& a : adapters_)
    LATHE_CHECK(a.name != name, "adapter name \"", name, "\" is given twice (", a.dir, " and ", dir,
                ")");
  Adapter a;
  a.name = name;
  a.dir = dir;
  LoraSpec spec = read_peft_config(dir);
  spec.dropout = 0;  // inference
  a.table = make_lora_table(cfg_, spec);
  a.weights = DeviceBuffer<float>(be_, a.table.total);
  {
    HostWrite<float> w(be_, a.weights.get(), a.table.total);
    load_peft_weights(dir, a.table, w.get());
    w.commit();
  }
  // As LlamaModel keeps a bf16 model's adapters: rounded once, multiplied as fp32.
  if (bf16_) be_.round_to_bf16(a.weights.get(), a.table.total);
  adapters_.push_back(std::move(a));
  return int(adapters_.size()) - 1;
}

void LoraBank::apply(int64_t l, Linear which, const float* x, float* y, int64_t M,
                     const int32_t* adapter) const {
  if (!adapter || adapters_.empty()) return;
  for (int64_t r0 = 0; r0 < M;) {
    const int32_t k = adapter[r0];
    int64_t r1 = r0 + 1;
    while (r1 < M && adapter[r1] == k) ++r1;
    if (k >= 0) {
      LATHE_ASSERT(size_t(k) < adapters_.size());
      const Adapter& a = adapters_[size_t(k)];
      const int64_t n = r1 - r0, r = a.table.spec.r;
      for (size_t id : a.table.by_layer[size_t(l)]) {
        const LoraEntry& e = a.table.entries[id];
        if (linear_of(e.proj) != which) continue;
        u_.ensure(be_, size_t(n * r));
        MatmulArgs ua;  // u = x·Aᵀ, the op order of LlamaModel::lora_forward
        ua.M = n, ua.N = r, ua.K = e.in;
        ua.A = x + r0 * e.in, ua.lda = e.in;
        ua.B = a.weights.get() + e.a_offset, ua.ldb = e.in, ua.trans_b = true;
        ua.C = u_.get(), ua.ldc = r;
        ua.bf16_operands = bf16_;
        be_.matmul(ua);
        if (bf16_) be_.round_to_bf16(u_.get(), size_t(n * r));
        MatmulArgs yb;  // y[:, cols] += s · u·Bᵀ
        yb.M = n, yb.N = e.out, yb.K = r;
        yb.A = u_.get(), yb.lda = r;
        yb.B = a.weights.get() + e.b_offset, yb.ldb = r, yb.trans_b = true;
        yb.C = y + r0 * e.fused_out + e.out_col, yb.ldc = e.fused_out;
        yb.alpha = a.table.spec.scaling(), yb.beta = 1.0f;
        yb.bf16_operands = bf16_;
        be_.matmul(yb);
      }
    }
    r0 = r1;
  }
}

}  // namespace lathe
