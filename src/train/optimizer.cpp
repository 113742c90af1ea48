#include "train/optimizer.h"

#include <cmath>

namespace lathe {

AdamW::AdamW(Backend& be, size_t n, const OptimizerSettings& s)
    : be_(be), s_(s), m_(be, n), v_(be, n) {}

double AdamW::step(LlamaModel& model, double lr, int64_t step) {
  const TrainableParams t = model.trainable();
  const size_t n = t.n;
  const double norm = std::sqrt(be_.sum_squares(t.grads, n));
  AdamWArgs a;
  if (s_.grad_clip > 0) {
    const double coef = s_.grad_clip / (norm + 1e-6);
    if (coef < 1.0) a.grad_scale = float(coef);
  }
  a.lr = float(lr);
  a.beta1 = float(s_.beta1);
  a.beta2 = float(s_.beta2);
  a.eps = float(s_.eps);
  a.weight_decay = float(s_.weight_decay);
  a.step = step;
  // The update also writes the weights the next forward reads (bf16-rounded in bf16
  // training), saving a separate pass over all parameters.
  float* p = t.params;
  const float* g = t.grads;
  const size_t c0 = t.compute ? t.compute_offset : n;
  if (c0 > 0) be_.adamw_step(p, g, m_.get(), v_.get(), nullptr, false, c0, a);
  if (c0 < n)
    be_.adamw_step(p + c0, g + c0, m_.get() + c0, v_.get() + c0, t.compute, true, n - c0, a);
  be_.sync();
  return norm;
}

}  // namespace lathe
