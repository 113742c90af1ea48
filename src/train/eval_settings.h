// The evaluation settings a run's config gives (eval.* and the data.* keys that shape
// rows), shared by the evaluations during training and by `lathe eval`, so the two score
// a model the same way.
#pragma once
#include "eval/evaluator.h"
#include "train/config.h"

namespace lathe {

EvalSettings eval_settings(const Config& cfg);

}  // namespace lathe
