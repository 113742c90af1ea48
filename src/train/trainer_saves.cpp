// Trainer: what a run leaves behind. Checkpoints (whole or sharded, and the note a failed
// save gives), evaluation lines in metrics.jsonl and TensorBoard, output.keep_best, and the
// final model or PEFT adapter. The step loop itself is in trainer.cpp.
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/json.h"
#include "core/trace.h"
#include "core/wall_clock.h"
#include "dist/communicator.h"
#include "eval/evaluator.h"
#include "io/hf_export.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "metrics/tensorboard.h"
#include "train/checkpoint.h"
#include "train/eval_settings.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace lathe {

double Trainer::evaluate() {
  return eval_loss(*model_, eval_rows_, cfg_.train.batch_size, cfg_.data.seq_len,
                   cfg_.data.padding == "max_length");
}

std::string Trainer::save_checkpoint() {
  TraceScope event("checkpoint", "phase");
  try {
    return write_checkpoint();
  } catch (const Error& e) {
    // A save that fails (a full disk, say) leaves the checkpoints before it as they were;
    // say which one a resume would use.
    fail("checkpoint of step ", step_, " not saved: ", e.what(), ". ", newest_checkpoint_note());
  }
}

std::string Trainer::newest_checkpoint_note() const {
  const auto newest = checkpoint_latest(cfg_.output.dir);
  return newest ? str_cat("The newest complete checkpoint, ", *newest,
                          ", is intact: train.resume=true continues from it")
                : std::string("There is no checkpoint yet to resume from");
}

std::string Trainer::write_checkpoint() {
  const TrainableParams t = model_->trainable();
  CheckpointState s;
  s.step = step_;
  s.sampler = sampler_->state();
  s.seed = cfg_.train.seed;
  s.num_params = t.n;
  s.model_config_json = nlohmann::json::parse(model_config_json_).dump();
  last_save_step_ = step_;
  if (comm_->size() == 1) {
    // Streamed from backend memory: no host copy of the three buffers.
    return checkpoint_save(cfg_.output.dir, s,
                           {t.params, optimizer_->m(), optimizer_->v(), t.n, be_.get()},
                           cfg_.output.keep_last, best_dir_);
  }
  // Each process writes one range, in parallel: its optimizer shard, or (no_shard, where
  // everything is replicated) an equal share.
  if (model_->sharded()) {
    s.num_params = model_->num_params();
    // One group holds every range once; under hybrid_shard the other groups are copies.
    const bool writes = replica_comm_->rank() == 0;
    return checkpoint_save_sharded(cfg_.output.dir, s, t.params, optimizer_->m(), optimizer_->v(),
                                   model_->num_params(), shard_.first, shard_.second, *comm_,
                                   cfg_.output.keep_last, best_dir_,
                                   writes ? group_comm_->rank() : -1, group_comm_->size());
  }
  const auto mine = shard_ranges(t.n, comm_->size())[size_t(comm_->rank())];
  const size_t skip = mine.first - shard_.first;
  return checkpoint_save_sharded(cfg_.output.dir, s, t.params + mine.first, optimizer_->m() + skip,
                                 optimizer_->v() + skip, t.n, mine.first, mine.second, *comm_,
                                 cfg_.output.keep_last, best_dir_);
}

std::map<std::string, double> Trainer::log_eval(std::ostream& metrics, bool tty) {
  TraceScope event("eval", "phase");
  EvalSettings es = eval_settings(cfg_);
  // Split the loss rows over the processes, except under full_shard, where every forward
  // gathers layers collectively and so all processes must run the same batches.
  if (!model_->collective_forward()) {
    es.rank = comm_->rank();
    es.world = comm_->size();
    es.sum_across = [this](double* v, size_t n) { comm_->allreduce_sum(v, n); };
  }
  const EvalReport r = lathe::evaluate(*model_, *be_, tokenizer_.get(), eval_rows_, es);
  nlohmann::json j = {{"step", step_}, {"time", wall_clock_seconds()}};
  std::string line;
  char buf[64];
  for (const auto& [k, v] : r.metrics) {
    j[k] = v;
    std::snprintf(buf, sizeof buf, "  %s %.4g", k.c_str(), v);
    line += buf;
  }
  metrics << j.dump() << "\n";
  metrics.flush();
  if (tensorboard_) tensorboard_->log(j);
  if (comm_->rank() == 0)
    std::fprintf(stderr, "%sstep %lld  eval%s\n", tty ? "\r\033[K" : "",
                 static_cast<long long>(step_), line.c_str());
  last_eval_step_ = step_;
  if (!cfg_.output.keep_best.empty()) keep_if_best(r.metrics);
  return r.metrics;
}

// output.keep_best: a checkpoint is written whenever the metric improves, and kept out of
// keep_last's rotation; checkpoints/best.json names it.
void Trainer::keep_if_best(const std::map<std::string, double>& m) {
  const std::string key = logged_metric_name(cfg_.output.keep_best);
  const auto it = m.find(key);
  if (it == m.end() || step_ == 0) return;
  const bool higher = metric_higher_is_better(key);
  if (has_best_ && (higher ? it->second <= best_value_ : it->second >= best_value_)) return;
  has_best_ = true;
  best_value_ = it->second;
  best_dir_.clear();              // the previous best may now rotate out
  best_dir_ = save_checkpoint();  // every process takes part; process 0 writes
  if (comm_->rank() != 0) return;
  const nlohmann::json j = {{"metric", key},
                            {"value", best_value_},
                            {"step", step_},
                            {"checkpoint", fs::path(best_dir_).filename().string()}};
  write_file_atomic((fs::path(cfg_.output.dir) / "checkpoints" / "best.json").string(),
                    j.dump(2) + "\n");
  std::fprintf(stderr, "best %s so far (%.4g): kept %s\n", key.c_str(), best_value_,
               best_dir_.c_str());
}

void Trainer::save_final(const std::string& final_dir, DType dtype, const std::string& sd) {
  if (comm_->size() > 1 && !model_->has_adapters() && !extended_tokenizer_) {
    // Every process holds the weights: each writes its share of the files' bytes.
    export_hf_model_parallel(
        *model_, final_dir, dtype, cfg_.model.path, comm_->rank(), comm_->size(),
        [this] { comm_->barrier(); }, !model_->sharded() || replica_comm_->rank() == 0);
    if (comm_->rank() == 0)
      std::fprintf(stderr, "saved %s (%s, written by %d processes)\n", final_dir.c_str(),
                   sd.c_str(), comm_->size());
    return;
  }
  if (comm_->rank() != 0) return;
  if (model_->has_adapters()) {
    save_peft_adapter(final_dir, model_->lora_table(), *be_, model_->lora_params(), dtype,
                      fs::absolute(cfg_.model.path).lexically_normal().string());
    std::fprintf(stderr,
                 "saved %s (PEFT LoRA adapter, %s); merge it with: lathe merge --base %s "
                 "--adapter %s -o merged\n",
                 final_dir.c_str(), sd.c_str(), cfg_.model.path.c_str(), final_dir.c_str());
    return;
  }
  export_hf_model(*model_, final_dir, dtype, cfg_.model.path,
                  extended_tokenizer_ ? tokenizer_.get() : nullptr);
  std::fprintf(stderr, "saved %s (%s)\n", final_dir.c_str(), sd.c_str());
}

}  // namespace lathe
