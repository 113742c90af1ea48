#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

namespace lathe {

AdamW::AdamW(Backend& be, size_t n, const OptimizerSettings& s)
    : be_(be), s_(s), m_(be, n), v_(be, n) {}

double AdamW::step(LlamaModel& model, double lr, int64_t step) {
  const TrainableParams t = model.trainable();
  const double norm = std::sqrt(be_.sum_squares(t.grads, t.n));
  update(t, t.grads, 0, t.n, lr, step, norm);
  return norm;
}

void AdamW::update(const TrainableParams& t, const float* grads, size_t begin, size_t count,
                   double lr, int64_t step, double grad_norm) {
  AdamWArgs a;
  if (s_.grad_clip > 0) {
    const double coef = s_.grad_clip / (grad_norm + 1e-6);
    if (coef < 1.0) a.grad_scale = float(coef);
  }
  a.lr = float(lr);
  a.beta1 = float(s_.beta1);
  a.beta2 = float(s_.beta2);
  a.eps = float(s_.eps);
  a.weight_decay = float(s_.weight_decay);
  a.step = step;
  // The update also writes the weights the next forward reads (bf16-rounded in bf16
  // training), saving a separate pass over all parameters. The range splits where the
  // compute copy begins.
  const size_t end = begin + count;
  const bool copy = t.compute || t.compute_bits;
  const size_t c0 = copy ? std::clamp(t.compute_offset, begin, end) : end;
  if (c0 > begin)
    be_.adamw_step(t.params + begin, grads, m_.get(), v_.get(), nullptr, nullptr, c0 - begin, a);
  if (c0 < end) {
    const size_t at = c0 - t.compute_offset;
    be_.adamw_step(t.params + c0, grads + (c0 - begin), m_.get() + (c0 - begin),
                   v_.get() + (c0 - begin), t.compute ? t.compute + at : nullptr,
                   t.compute_bits ? t.compute_bits + at : nullptr, end - c0, a);
  }
  be_.sync();
}

}  // namespace lathe
