// The training loop, written out: set up, then for each optimizer step gather the
// micro-batches, forward/backward each, clip, schedule, AdamW, log, checkpoint; at the
// end export an HF folder. No callbacks; read it top to bottom.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/device_buffer.h"
#include "backend/peak.h"
#include "data/input_ids_source.h"
#include "data/sampler.h"
#include "dist/comm_worker.h"
#include "dist/communicator.h"
#include "dist/strategy.h"
#include "model/llama.h"
#include "train/config.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace lathe {

class Tokenizer;
class TensorBoardWriter;
class DashboardServer;

struct StepMetrics {
  int64_t step = 0;  // 1-based after the update
  double loss = 0, lr = 0, grad_norm = 0;
  int64_t tokens = 0, targets = 0;
  double step_time_s = 0, tokens_per_s = 0, mfu = 0;
  // This process's collective traffic in the step; seconds the training thread spent
  // blocked on communication (its own collectives, and waits for the communication
  // thread); seconds the communication thread spent in collectives (mostly overlapped).
  double comm_bytes = 0, comm_s = 0, comm_thread_s = 0;
};

// Whether eval.metrics includes a metric computed on generated text.
bool needs_generation(const Config& cfg);
// The metrics.jsonl name of an eval.metrics / output.keep_best name ("loss" → "eval_loss";
// "rouge" → "rougeL").
std::string logged_metric_name(const std::string& name);

class Trainer {
 public:
  // Loads the model and data and, with train.resume, the newest checkpoint. It computes on
  // train.device, or on `backend` where one is given (tests wrap the CPU's this way).
  explicit Trainer(const Config& cfg, std::unique_ptr<Backend> backend = nullptr);
  ~Trainer();

  // Runs to the end (or until stop is requested), saving checkpoints and final/.
  void run();
  // One optimizer step; exposed for tests.
  StepMetrics step();

  int64_t steps_done() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  LlamaModel& model() { return *model_; }
  // Returns the checkpoint folder. A failed save throws, naming the checkpoint to resume from.
  std::string save_checkpoint();
  // Mean token loss over data.eval (0 when there is none).
  double evaluate();
  // Called from a signal handler context-free flag: finish the step, checkpoint, return.
  static void request_stop();
  const MatmulPeak& matmul_peak() const { return peak_; }
  const Communicator& communicator() const { return *comm_; }

 private:
  Config cfg_;
  std::unique_ptr<Communicator> comm_;
  // The checkpoint train.resume resolved to, and whether the run in output.dir is cut back
  // to its step (a resume of this folder's own run, rather than a fresh run).
  std::unique_ptr<TensorBoardWriter> tensorboard_;  // output.tensorboard, process 0
  std::unique_ptr<DashboardServer> dashboard_;       // output.dashboard, process 0
  std::optional<std::string> resume_from_;
  bool rewind_ = false;
  std::string write_checkpoint();
  std::string newest_checkpoint_note() const;
  void save_final(const std::string& final_dir, DType dtype, const std::string& save_dtype);
  void write_trace(int64_t first, int64_t last);  // train.profile_steps' trace.json  // for errors: what a resume would continue from
  // full_shard / hybrid_shard: the processes sharing one copy of the parameters, and the
  // processes holding the same range in the other copies (hybrid_shard's replicas).
  std::unique_ptr<Communicator> group_comm_, replica_comm_, replica_worker_comm_;
  // The communication thread: the sharded model's gathers and reduces, or (the other
  // strategies) each layer's gradient reduction as soon as the backward has finished it.
  std::unique_ptr<CommWorker> worker_;
  std::unique_ptr<CommWorker> base_worker_;  // LoRA under full_shard: the frozen base's layers
  ShardStrategy strategy_ = ShardStrategy::NoShard;
  ShardStrategy update_strategy_ = ShardStrategy::NoShard;  // how trainable values are updated
  std::pair<size_t, size_t> shard_;  // this process's range of the trainable buffer
  double data_parallel_update(double lr);
  void reduce_when_ready(size_t lo, size_t hi);  // queues a gradient range's reduction
  // This process's traffic so far over all its communicators, the seconds training was
  // blocked on communication, and the seconds communication threads spent in collectives.
  struct CommTotals {
    double bytes = 0, blocked_s = 0, thread_s = 0;
  };
  CommTotals comm_totals() const;
  std::unique_ptr<Backend> be_;
  std::unique_ptr<LlamaModel> model_;
  std::map<std::string, double> log_eval(std::ostream& metrics, bool tty);
  void keep_if_best(const std::map<std::string, double>& metrics);
  std::vector<const TokenRow*> pack_next_row();
  Batch next_micro_batch(int64_t* tokens);
  std::vector<TokenRow> rows_, eval_rows_;
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<AdamW> optimizer_;
  DeviceBuffer<float> grad_shard_;
  size_t grad_queued_ = 0;  // gradient values handed to the worker this step  // shard_grad_op: the reduced gradient of shard_ (after be_)
  // Set when special tokens were added (then saved with the model) or when eval metrics
  // generate text.
  std::unique_ptr<Tokenizer> tokenizer_;
  bool extended_tokenizer_ = false;
  std::string best_dir_;  // output.keep_best: the best checkpoint so far
  double best_value_ = 0;
  bool has_best_ = false;
  int64_t last_eval_step_ = -1, last_save_step_ = -1;
  ScheduleSpec schedule_;
  int64_t step_ = 0, total_steps_ = 0;
  MatmulPeak peak_;
  std::string model_config_json_;
};

}  // namespace lathe
