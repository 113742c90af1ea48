// AdamW over the model's flat trainable buffer (all parameters, or the LoRA adapters),
// with global-norm gradient clipping.
#pragma once
#include <cstddef>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "model/llama.h"

namespace lathe {

struct OptimizerSettings {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  double grad_clip = 0.0;  // 0 = off
};

class AdamW {
 public:
  AdamW(Backend& be, size_t n, const OptimizerSettings& s);
  // Clips the gradients (torch.nn.utils.clip_grad_norm_ semantics), applies one AdamW
  // step with learning rate lr, refreshes the model's compute weights. `step` is the
  // 1-based update count. Returns the gradient norm before clipping.
  double step(LlamaModel& model, double lr, int64_t step);
  // Data parallel: updates elements [begin, begin + count) of the trainable buffer (this
  // process's shard; the optimizer state holds `count` elements), reading their gradient
  // from `grads`; grad_norm is the global norm, for clipping.
  void update(const TrainableParams& t, const float* grads, size_t begin, size_t count,
              double lr, int64_t step, double grad_norm);
  float* m() { return m_.get(); }
  float* v() { return v_.get(); }

 private:
  Backend& be_;
  OptimizerSettings s_;
  DeviceBuffer<float> m_, v_;
};

}  // namespace lathe
