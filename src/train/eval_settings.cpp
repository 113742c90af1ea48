#include "train/eval_settings.h"

namespace lathe {

EvalSettings eval_settings(const Config& cfg) {
  EvalSettings es;
  es.metrics = cfg.eval.metrics;
  es.format = cfg.data.format;
  es.batch_size = cfg.train.batch_size;
  es.seq_len = cfg.data.seq_len;
  es.pad_to_max = cfg.data.padding == "max_length";
  es.max_samples = cfg.eval.max_samples;
  es.max_new_tokens = cfg.eval.max_new_tokens;
  return es;
}

}  // namespace lathe
