#include "train/optimizer.h"

#include <cmath>

namespace lathe {

AdamW::AdamW(Backend& be, size_t n, const OptimizerSettings& s)
    : be_(be), s_(s), m_(be, n), v_(be, n) {}

double AdamW::step(LlamaModel& model, double lr, int64_t step) {
  const size_t n = model.num_params();
  const double norm = std::sqrt(be_.sum_squares(model.grads(), n));
  if (s_.grad_clip > 0) {
    const double coef = s_.grad_clip / (norm + 1e-6);
    if (coef < 1.0) be_.scale(model.grads(), n, float(coef));
  }
  AdamWArgs a;
  a.lr = float(lr);
  a.beta1 = float(s_.beta1);
  a.beta2 = float(s_.beta2);
  a.eps = float(s_.eps);
  a.weight_decay = float(s_.weight_decay);
  a.step = step;
  // The update also writes the weights the next forward reads (bf16-rounded in bf16
  // training), saving a separate pass over all parameters.
  be_.adamw_step(model.params(), model.grads(), m_.get(), v_.get(),
                 model.has_compute_copy() ? model.compute_weights() : nullptr,
                 model.precision() == Precision::BF16, n, a);
  be_.sync();
  return norm;
}

}  // namespace lathe
