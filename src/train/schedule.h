// Learning-rate schedules, as multipliers of the base rate at optimizer step k (0-based:
// the k-th update uses lr·lambda(k)), following transformers' get_*_schedule_with_warmup:
// warmup is linear from 0, so step 0 uses lr 0.
#pragma once
#include <cstdint>
#include <string>

namespace lathe {

struct ScheduleSpec {
  std::string kind = "constant";  // constant | linear | cosine | step
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  int64_t steps_per_epoch = 1;  // for `step`: lr *= gamma at each epoch, as llama-recipes' StepLR
  double gamma = 0.85;
};

double lr_multiplier(const ScheduleSpec& s, int64_t step);

}  // namespace lathe
