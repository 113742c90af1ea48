// LoRA adapters inside LlamaModel's fused products: y += (alpha/r)·x·Aᵀ·Bᵀ on the columns
// of the projections they adapt, their gradients, and dropout with a regenerated mask.
#include "backend/backend.h"
#include "model/llama.h"

namespace lathe {

Linear linear_of(Proj p) {
  switch (p) {
    case Proj::Q:
    case Proj::K:
    case Proj::V:
      return Linear::QKV;
    case Proj::O:
      return Linear::O;
    case Proj::Gate:
    case Proj::Up:
      return Linear::GateUp;
    case Proj::Down:
      return Linear::Down;
  }
  return Linear::QKV;
}

uint64_t LlamaModel::dropout_seed(int64_t l, size_t entry) const {
  return dropout_seed_ * 0x9e3779b97f4a7c15ull + uint64_t(l) * 131 + entry;
}

void LlamaModel::lora_forward(int64_t l, Linear which, const float* x, float* y, int64_t M,
                              LayerActs* acts, bool train) {
  if (!frozen_) return;
  const auto& ids = lora_.by_layer[size_t(l)];
  const int64_t r = lora_.spec.r;
  const float* W = lora_compute_.get() ? lora_compute_.get() : lora_params_.get();
  const bool drop = train && lora_.spec.dropout > 0;
  for (size_t k = 0; k < ids.size(); ++k) {
    const LoraEntry& e = lora_.entries[ids[k]];
    if (linear_of(e.proj) != which) continue;
    const float* xin = x;
    if (drop) {
      lora_x_.ensure(be_, size_t(M * e.in));
      be_.dropout(lora_x_.get(), x, size_t(M * e.in), float(lora_.spec.dropout),
                  dropout_seed(l, ids[k]), false);
      maybe_round(lora_x_.get(), size_t(M * e.in));  // 1/(1-p) leaves the bf16 grid
      xin = lora_x_.get();
    }
    float* u;
    if (acts) {
      u = acts->lora_u.get() + k * size_t(M * r);
    } else {
      lora_u_.ensure(be_, size_t(M * r));
      u = lora_u_.get();
    }
    matmul_xwT(u, xin, W + e.a_offset, M, r, e.in, 0.0f);  // u = x·Aᵀ
    maybe_round(u, size_t(M * r));
    MatmulArgs a;  // y[:, cols] += s · u·Bᵀ
    a.M = M, a.N = e.out, a.K = r;
    a.A = u, a.lda = r;
    a.B = W + e.b_offset, a.ldb = r, a.trans_b = true;
    a.C = y + e.out_col, a.ldc = e.fused_out;
    a.alpha = lora_.spec.scaling(), a.beta = 1.0f;
    product(a);
  }
}

void LlamaModel::lora_backward(int64_t l, Linear which, const float* x, const float* dy,
                               int64_t ld_dy, float* dx, int64_t M, LayerActs& acts) {
  if (!frozen_) return;
  const auto& ids = lora_.by_layer[size_t(l)];
  const int64_t r = lora_.spec.r;
  const float s = lora_.spec.scaling();
  const float* W = lora_compute_.get() ? lora_compute_.get() : lora_params_.get();
  float* G = lora_grads_.get();
  const bool drop = lora_.spec.dropout > 0;
  lora_du_.ensure(be_, size_t(M * r));
  float* du = lora_du_.get();
  for (size_t k = 0; k < ids.size(); ++k) {
    const LoraEntry& e = lora_.entries[ids[k]];
    if (linear_of(e.proj) != which) continue;
    const float* u = acts.lora_u.get() + k * size_t(M * r);
    const float* dye = dy + e.out_col;
    MatmulArgs db;  // dB += s · dyᵀ·u
    db.M = e.out, db.N = r, db.K = M;
    db.A = dye, db.lda = ld_dy, db.trans_a = true;
    db.B = u, db.ldb = r;
    db.C = G + e.b_offset, db.ldc = r, db.alpha = s, db.beta = 1.0f;
    product(db);
    MatmulArgs dua;  // du = s · dy·B
    dua.M = M, dua.N = r, dua.K = e.out;
    dua.A = dye, dua.lda = ld_dy;
    dua.B = W + e.b_offset, dua.ldb = r;
    dua.C = du, dua.ldc = r, dua.alpha = s;
    product(dua);
    maybe_round(du, size_t(M * r));
    const float* xin = x;
    if (drop) {  // the forward's mask, regenerated
      lora_x_.ensure(be_, size_t(M * e.in));
      be_.dropout(lora_x_.get(), x, size_t(M * e.in), float(lora_.spec.dropout),
                  dropout_seed(l, ids[k]), false);
      maybe_round(lora_x_.get(), size_t(M * e.in));
      xin = lora_x_.get();
    }
    MatmulArgs da;  // dA += duᵀ·x
    da.M = r, da.N = e.in, da.K = M;
    da.A = du, da.lda = r, da.trans_a = true;
    da.B = xin, da.ldb = e.in;
    da.C = G + e.a_offset, da.ldc = e.in, da.beta = 1.0f;
    product(da);
    MatmulArgs dxa;  // dx += du·A (through the dropout mask)
    dxa.M = M, dxa.N = e.in, dxa.K = r;
    dxa.A = du, dxa.lda = r;
    dxa.B = W + e.a_offset, dxa.ldb = e.in;
    dxa.C = drop ? lora_x_.get() : dx, dxa.ldc = e.in, dxa.beta = drop ? 0.0f : 1.0f;
    product(dxa);
    if (drop)
      be_.dropout(dx, lora_x_.get(), size_t(M * e.in), float(lora_.spec.dropout),
                  dropout_seed(l, ids[k]), true);
  }
}

}  // namespace lathe
