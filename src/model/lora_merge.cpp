#include "model/lora_merge.h"

#include "backend/device_buffer.h"
#include "core/error.h"

namespace lathe {

void merge_lora(LlamaModel& model, const LoraTable& table, const float* adapter) {
  LATHE_CHECK(!model.has_adapters(), "merge_lora needs a full model, not a frozen base");
  Backend& be = model.backend();
  DeviceBuffer<float> a(be, table.total);
  be.copy(a.get(), adapter, table.total * sizeof(float));
  for (const LoraEntry& e : table.entries) {
    const LayerOffsets& o = model.table().layers[size_t(e.layer)];
    size_t fused = o.wqkv;
    switch (linear_of(e.proj)) {
      case Linear::QKV: fused = o.wqkv; break;
      case Linear::O: fused = o.wo; break;
      case Linear::GateUp: fused = o.wgu; break;
      case Linear::Down: fused = o.wd; break;
    }
    // The projection's rows inside the fused [fused_out, in] weight start at out_col.
    MatmulArgs m;
    m.M = e.out, m.N = e.in, m.K = table.spec.r;
    m.A = a.get() + e.b_offset, m.lda = table.spec.r;
    m.B = a.get() + e.a_offset, m.ldb = e.in;
    m.C = model.params() + fused + size_t(e.out_col * e.in), m.ldc = e.in;
    m.alpha = table.spec.scaling(), m.beta = 1.0f;
    be.matmul(m);
  }
  be.sync();
  model.refresh_compute_weights();
}

}  // namespace lathe
