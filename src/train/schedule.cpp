#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace lathe {

double lr_multiplier(const ScheduleSpec& s, int64_t k) {
  if (k < s.warmup_steps) return double(k) / double(std::max<int64_t>(1, s.warmup_steps));
  const double span = double(std::max<int64_t>(1, s.total_steps - s.warmup_steps));
  const double progress = double(k - s.warmup_steps) / span;
  if (s.kind == "constant") return 1.0;
  if (s.kind == "linear") return std::max(0.0, 1.0 - progress);
  if (s.kind == "cosine") return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  if (s.kind == "step") return std::pow(s.gamma, double(k / std::max<int64_t>(1, s.steps_per_epoch)));
  fail("unknown schedule '", s.kind, "': use constant, linear, cosine or step");
}

}  // namespace lathe
