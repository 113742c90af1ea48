#include "train/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "backend/host_staging.h"
#include "backend/peak.h"
#include "backend/select.h"
#include "core/cpu_isa.h"
#include "core/error.h"
#include "core/json.h"
#include "core/trace.h"
#include "core/wall_clock.h"
#include "data/batcher.h"
#include "dist/communicator.h"
#include "eval/evaluator.h"
#include "io/hf_export.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "metrics/dashboard_server.h"
#include "metrics/tensorboard.h"
#include "model/param_table.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/datasets.h"
#include "train/memory_check.h"
#include "train/model_loader.h"
#include "train/run_folder.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

std::atomic<bool> g_stop{false};

using Clock = std::chrono::steady_clock;

// This process's peak resident memory so far (getrusage reports KiB on Linux).
double peak_rss_mb() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string format_duration(double s) {
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", int(s / 3600), int(std::fmod(s, 3600) / 60));
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%dm%02ds", int(s / 60), int(std::fmod(s, 60)));
  else
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  return buf;
}

// {"tokens": [...]}, the special-tokens file of the Ray fine-tuning templates.
std::vector<std::string> read_special_tokens(const std::string& path) {
  std::ifstream f(path);
  LATHE_CHECK(f, "cannot open ", path, " (model.special_tokens): ", std::strerror(errno));
  nlohmann::json j;
  try {
    f >> j;
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON (", e.what(), "); expected {\"tokens\": [\"<tok>\", ...]}");
  }
  LATHE_CHECK(j.is_object() && j.contains("tokens") && j["tokens"].is_array(), path,
              ": expected {\"tokens\": [\"<tok>\", ...]}");
  std::vector<std::string> tokens;
  for (const auto& t : j["tokens"]) {
    LATHE_CHECK(t.is_string() && !t.get<std::string>().empty(), path,
                ": every entry of \"tokens\" must be a non-empty string");
    tokens.push_back(t.get<std::string>());
  }
  return tokens;
}

}  // namespace

bool needs_generation(const Config& cfg) {
  for (const std::string& m : cfg.eval.metrics)
    if (m == "rouge" || m == "bleu" || m == "exact_match") return true;
  return false;
}

std::string logged_metric_name(const std::string& name) {
  if (name == "loss" || name == "ppl") return "eval_" + name;
  if (name == "rouge") return "rougeL";
  return name;
}

void Trainer::request_stop() { g_stop = true; }

Trainer::~Trainer() = default;

namespace {

// CPU threads for this process. Processes on one machine share its cores: by default
// each takes cores / processes. Asked for more than that (train.threads or
// OMP_NUM_THREADS times the local processes above the cores), threads are capped at the
// fair share with a message: 2 processes × 2 threads on 2 cores ran a step 2.35× slower
// than 2 × 1 (3 min 8 s against 1 min 20 s for the same run), as each process's
// OpenMP barriers wait on threads the other process has descheduled.
int threads_per_process(int requested, int local_processes, bool report) {
  const int cores = usable_cpu_count();
  const int share = std::max(1, cores / std::max(1, local_processes));
  int want = requested;
  const char* omp = std::getenv("OMP_NUM_THREADS");
  const char* source = "train.threads";
  if (want == 0 && omp && std::atoi(omp) > 0) want = std::atoi(omp), source = "OMP_NUM_THREADS";
  if (want == 0) return local_processes > 1 ? share : 0;  // 0: all cores
  if (int64_t(want) * local_processes > cores) {
    if (report)
      std::fprintf(stderr,
                   "warning: %s=%d x %d processes on this machine = %d threads on %d cores; "
                   "using %d thread%s per process (oversubscribed cores slow every step)\n",
                   source, want, local_processes, want * local_processes, cores, share,
                   share == 1 ? "" : "s");
    return share;
  }
  return want;
}

}  // namespace

Trainer::Trainer(const Config& cfg, std::unique_ptr<Backend> backend) : cfg_(cfg) {
  LATHE_CHECK(!cfg_.model.path.empty(),
              "model.path is not set: give the HF model folder, e.g. model.path=path/to/model");
  LATHE_CHECK(!cfg_.data.train.empty(),
              "data.train is not set: give a jsonl file, e.g. data.train=train.jsonl");
  comm_ = make_communicator(cfg_.dist.timeout);
  // The run folder holds one run: a resumed run continues the one there from the checkpoint
  // train.resume names; a fresh run (or one resumed from a checkpoint elsewhere) must find
  // the folder free, or clear it with output.overwrite. Checked before the model loads, so
  // a mistake costs seconds. Every process resolves the same checkpoint from the shared
  // folder; process 0 alone changes the folder, after all have resolved (see the barrier).
  if (cfg_.train.resume != "false")
    resume_from_ = resolve_resume(cfg_.output.dir, cfg_.train.resume);
  rewind_ = cfg_.train.resume == "true" ||
            (resume_from_ && checkpoint_in(cfg_.output.dir, *resume_from_));
  if (comm_->rank() == 0 && !rewind_) claim_run_folder(cfg_.output.dir, cfg_.output.overwrite);
  strategy_ = shard_strategy_from_name(cfg_.dist.strategy);
  const bool shards_params =
      strategy_ == ShardStrategy::FullShard || strategy_ == ShardStrategy::HybridShard;
  // LoRA under full_shard: the frozen base's layers are split over the processes; the
  // small adapters are updated as under shard_grad_op.
  const bool lora = cfg_.peft.method != "none";
  update_strategy_ = shards_params && lora ? ShardStrategy::Zero2 : strategy_;
  // Processes sharing a machine share its cores, unless told otherwise (train.threads,
  // OMP_NUM_THREADS): each would otherwise start a thread per core.
  be_ = backend ? std::move(backend)
                : make_backend(cfg_.train.device,
                               threads_per_process(int(cfg_.train.threads), local_process_count(),
                                                   comm_->rank() == 0));
  // train.profile_steps: every backend call becomes a trace event while the steps record
  // (the wrapper costs one virtual call and a clock read per op, so only when asked).
  if (!cfg_.train.profile_steps.empty()) be_ = make_profiling_backend(std::move(be_), false);
  trace::name_thread("training");
  // Collectives (MPI) and the sharded paths work on the buffers from the host.
  LATHE_CHECK(comm_->size() == 1 || be_->host_accessible(), comm_->size(), " processes on the ",
              be_->description(),
              " backend need device collectives (NCCL), which are not written yet: run one "
              "process per job there, or set train.device=cpu");

  const std::string config_path = (fs::path(cfg_.model.path) / "config.json").string();
  LlamaConfig mc = llama_config_from_json_file(config_path);
  if (!cfg_.model.special_tokens.empty()) {
    tokenizer_ = Tokenizer::load(cfg_.model.path);
    const std::vector<int32_t> ids =
        tokenizer_->add_special_tokens(read_special_tokens(cfg_.model.special_tokens));
    // The embedding grows to cover every new id (a vocabulary may already have spare rows).
    mc.vocab_size = std::max<int64_t>(mc.vocab_size, tokenizer_->vocab_size());
    std::fprintf(stderr,
                 "special tokens: %zu requested, vocabulary now %d tokens, model rows %lld\n",
                 ids.size(), tokenizer_->vocab_size(), static_cast<long long>(mc.vocab_size));
  }
  model_config_json_ = llama_config_to_json_text(mc, mc.torch_dtype);
  check_memory_fits(
      cfg_, mc,
      {comm_->size(), local_process_count(), be_->bf16_kernels() && cfg_.train.precision == "bf16",
       be_->host_accessible()});
  // full_shard: this process holds one range of the flat parameters. hybrid_shard: the
  // same within a group of dist.shard_group_size processes (default: one machine's), and
  // the groups are replicas that sum their gradients.
  std::optional<ParamShard> pshard;
  if (shards_params && comm_->size() > 1) {
    int group = comm_->size();
    if (strategy_ == ShardStrategy::HybridShard) {
      group =
          cfg_.dist.shard_group_size > 0 ? int(cfg_.dist.shard_group_size) : local_process_count();
      LATHE_CHECK(group >= 1 && comm_->size() % group == 0, "dist.shard_group_size=", group,
                  " must divide the ", comm_->size(), " processes");
    }
    group_comm_ = comm_->split(comm_->rank() / group, comm_->rank());
    replica_comm_ = comm_->split(comm_->rank() % group, comm_->rank());
    // Used by the communication thread only (hybrid_shard's sums across replicas).
    replica_worker_comm_ = replica_comm_->split(0, replica_comm_->rank());
    auto& w = lora ? base_worker_ : worker_;
    w = std::make_unique<CommWorker>(group_comm_->split(0, group_comm_->rank()),
                                     cfg_.dist.overlap && group_comm_->concurrent());
    const auto r = shard_ranges(make_param_table(mc).total, group)[size_t(group_comm_->rank())];
    pshard = ParamShard{w.get(), r.first, r.second};
  }
  if (comm_->size() > 1 && !worker_) {
    worker_ = std::make_unique<CommWorker>(comm_->split(0, comm_->rank()),
                                           cfg_.dist.overlap && comm_->concurrent());
  }
  model_ = load_model(cfg_, mc, *be_, tokenizer_ != nullptr, pshard ? &*pshard : nullptr);
  extended_tokenizer_ = tokenizer_ != nullptr;
  if (needs_generation(cfg_) && !tokenizer_) tokenizer_ = Tokenizer::load(cfg_.model.path);

  auto report = [](const char* what, const LoadedRows& d) {
    std::fprintf(stderr,
                 "%s: %lld rows, %lld tokens (%lld with loss); %lld truncated, %lld dropped, "
                 "%lld bad rows skipped; %.2fs%s\n",
                 what, static_cast<long long>(d.stats.rows), static_cast<long long>(d.stats.tokens),
                 static_cast<long long>(d.stats.targets), static_cast<long long>(d.stats.truncated),
                 static_cast<long long>(d.stats.dropped),
                 static_cast<long long>(d.stats.skipped_bad), d.seconds,
                 d.cache_path.empty() ? "" : (d.cache_hit ? " (cached)" : " (tokenized, cached)"));
    if (!d.stats.first_bad.empty())
      std::fprintf(stderr, "  first skipped row: %s\n", d.stats.first_bad.c_str());
  };
  LoadedRows train = load_rows(cfg_, cfg_.data.train, mc.vocab_size, tokenizer_.get());
  report("train data", train);
  rows_ = std::move(train.rows);
  if (!cfg_.data.eval.empty()) {
    LoadedRows eval = load_rows(cfg_, cfg_.data.eval, mc.vocab_size, tokenizer_.get());
    report("eval data", eval);
    eval_rows_ = std::move(eval.rows);
  } else if (cfg_.data.test_split > 0) {
    eval_rows_ = split_eval_rows(rows_, cfg_.data.test_split, cfg_.train.seed);
  }
  // Each process takes every world-th row of the same stream: one step of W processes with
  // micro-batch B sees the rows one process with micro-batch W·B would.
  sampler_ = std::make_unique<Sampler>(rows_.size(), cfg_.data.shuffle, cfg_.train.seed,
                                       comm_->rank(), comm_->size());
  if (!cfg_.output.keep_best.empty()) {
    LATHE_CHECK(!eval_rows_.empty(), "output.keep_best=", cfg_.output.keep_best,
                " needs eval data: set data.eval or data.test_split");
    const std::string key = logged_metric_name(cfg_.output.keep_best);
    bool produced = false;
    for (const std::string& m : cfg_.eval.metrics)
      produced |= logged_metric_name(m) == key || (m == "rouge" && key.rfind("rouge", 0) == 0);
    LATHE_CHECK(produced, "output.keep_best=", cfg_.output.keep_best,
                " is not among the metrics "
                "eval.metrics computes; add it there, e.g. eval.metrics=[loss, exact_match]");
  }

  // Rows per epoch: the documents, or with packing the packed rows one epoch makes (a
  // dry run of the packer in file order; shuffled epochs pack within a row or two of it).
  int64_t epoch_rows = int64_t(rows_.size());
  if (cfg_.data.packing) {
    epoch_rows = 0;
    int64_t len = 0;
    for (const TokenRow& r : rows_) {
      const int64_t n = row_tokens(r, cfg_.data.seq_len);
      if (len > 0 && len + n > cfg_.data.seq_len) ++epoch_rows, len = 0;
      len += n;
    }
    epoch_rows += len > 0;
  }
  const int64_t rows_per_step = cfg_.train.batch_size * cfg_.train.grad_accum * comm_->size();
  const int64_t steps_per_epoch =
      std::max<int64_t>(1, (epoch_rows + rows_per_step - 1) / rows_per_step);
  total_steps_ =
      cfg_.train.max_steps > 0
          ? cfg_.train.max_steps
          : std::max<int64_t>(1, int64_t(std::ceil(cfg_.train.epochs * double(epoch_rows) /
                                                   double(rows_per_step))));
  schedule_ = {cfg_.train.schedule, cfg_.train.warmup_steps, total_steps_, steps_per_epoch,
               cfg_.train.gamma};

  const size_t n = model_->trainable().n;
  OptimizerSettings os;
  os.beta1 = cfg_.train.betas[0];
  os.beta2 = cfg_.train.betas[1];
  os.eps = cfg_.train.eps;
  os.weight_decay = cfg_.train.weight_decay;
  os.grad_clip = cfg_.train.grad_clip;
  // Sharded strategies: this process updates (and keeps optimizer state for) its range.
  shard_ = {0, n};
  if (model_->sharded()) {
    // trainable() is this process's range already; its place in the whole model:
    shard_ = model_->shard_range();
  } else if (comm_->size() > 1 && strategy_ != ShardStrategy::NoShard) {
    shard_ = shard_ranges(n, comm_->size())[size_t(comm_->rank())];
  }
  if (comm_->size() > 1 && update_strategy_ == ShardStrategy::Zero2)
    grad_shard_ = DeviceBuffer<float>(*be_, shard_.second);
  optimizer_ = std::make_unique<AdamW>(*be_, shard_.second, os);
  if (resume_from_) {
    const std::string& from = *resume_from_;
    // A checkpoint written by any number of processes: each reads all parameters and
    // the optimizer state of its own range.
    // Read on the host, then copied to the backend (in place where it is host memory).
    const size_t held = model_->sharded() ? shard_.second : n;
    HostWrite<float> params(*be_, model_->trainable().params, held, /*keep=*/true);
    HostWrite<float> m(*be_, optimizer_->m(), shard_.second, true);
    HostWrite<float> v(*be_, optimizer_->v(), shard_.second, true);
    CheckpointState s = checkpoint_load_range(
        from, params.get(), m.get(), v.get(), model_->sharded() ? model_->num_params() : n,
        shard_.first, shard_.second, /*params_in_range=*/model_->sharded());
    params.commit(), m.commit(), v.commit();
    LATHE_CHECK(s.seed == cfg_.train.seed, from, ": written with train.seed=", s.seed,
                " but this run has train.seed=", cfg_.train.seed,
                ": resume with the same seed or start a new output.dir");
    model_->refresh_compute_weights();
    sampler_->restore(s.sampler);
    step_ = s.step;
    if (comm_->rank() == 0)
      std::fprintf(stderr, "resumed from %s (step %lld)\n", from.c_str(),
                   static_cast<long long>(step_));
  } else if (cfg_.train.resume == "true" && comm_->rank() == 0) {
    std::fprintf(stderr,
                 "train.resume=true but %s/checkpoints has no checkpoint: starting from step 0\n",
                 cfg_.output.dir.c_str());
  }
  if (rewind_) {
    // Every process has read its checkpoint before process 0 deletes the later ones.
    comm_->barrier();
    if (comm_->rank() == 0)
      for (const std::string& r : rewind_run_folder(cfg_.output.dir, step_))
        std::fprintf(stderr, "rewound the run to step %lld: removed %s\n",
                     static_cast<long long>(step_), r.c_str());
  }
  peak_ = lathe::matmul_peak(*be_, cfg_.train.precision, /*remeasure=*/false);
}

Trainer::CommTotals Trainer::comm_totals() const {
  CommTotals t;
  // Collectives on a communication thread block training only when it runs them inline;
  // on the thread, what blocks is the time spent waiting for it.
  auto add = [&](const CommStats& s, const CommWorker* runs_it) {
    t.bytes += s.bytes;
    (runs_it && runs_it->threaded() ? t.thread_s : t.blocked_s) += s.seconds;
  };
  for (const Communicator* c : {comm_.get(), group_comm_.get(), replica_comm_.get()})
    if (c) add(c->stats(), nullptr);
  if (replica_worker_comm_) add(replica_worker_comm_->stats(), worker_.get());
  for (const CommWorker* w : {worker_.get(), base_worker_.get()}) {
    if (!w) continue;
    add(w->comm().stats(), w);
    t.blocked_s += w->wait_seconds();
  }
  return t;
}

void Trainer::write_trace(int64_t first, int64_t last) {
  const std::string name =
      comm_->rank() == 0 ? "trace.json" : str_cat("trace-rank", comm_->rank(), ".json");
  const std::string path = (fs::path(cfg_.output.dir) / name).string();
  fs::create_directories(cfg_.output.dir);
  const size_t events = trace::stop_and_write(path);
  if (comm_->rank() == 0)
    std::fprintf(stderr, "%swrote %s: %zu events, steps %lld-%lld (open in ui.perfetto.dev)\n",
                 ::isatty(2) ? "\r\033[K" : "", path.c_str(), events, static_cast<long long>(first),
                 static_cast<long long>(last));
}

StepMetrics Trainer::step() {
  TraceScope event("step", "step");
  if (event.on()) event.args(str_cat("\"step\": ", step_ + 1));
  const auto t0 = Clock::now();
  const CommTotals comm0 = comm_totals();
  const int64_t A = cfg_.train.grad_accum;
  std::vector<Batch> micro;
  int64_t targets = 0, tokens = 0;
  for (int64_t j = 0; j < A; ++j) {
    micro.push_back(next_micro_batch(&tokens));
    targets += micro.back().num_targets();
  }

  // The step's loss is the mean over all its target tokens, whatever the split into
  // micro-batches, so each micro-batch's gradient is scaled by 1/targets of the step.
  // The step's loss is the mean over the target tokens of every process.
  double counts[2] = {double(targets), double(tokens)};
  comm_->allreduce_sum(counts, 2);
  targets = int64_t(counts[0]), tokens = int64_t(counts[1]);
  model_->zero_grads();
  double loss_sum = 0;
  const float scale = targets > 0 ? 1.0f / float(targets) : 0.0f;
  grad_queued_ = 0;
  for (size_t j = 0; j < micro.size(); ++j) {
    // LoRA dropout masks follow from (seed, step, micro-batch), so a resumed run draws the same.
    model_->set_dropout_seed(cfg_.train.seed * 0x100000001b3ull + uint64_t(step_ * A) + j);
    // The last micro-batch finishes each gradient: from there each layer's goes out while
    // the layers below run their backward (earlier micro-batches only accumulate, like
    // DDP's no_sync). A sharded model reduces its own layers.
    const bool last = j + 1 == micro.size();
    if (last && comm_->size() > 1 && !model_->sharded())
      model_->set_grad_ready_hook([this](size_t lo, size_t hi) { reduce_when_ready(lo, hi); });
    // hybrid_shard: each reduced shard range is then summed over the replicas, on the
    // same thread and so after its reduction within the group.
    if (last && model_->sharded() && replica_comm_->size() > 1)
      model_->set_grad_ready_hook([this](size_t lo, size_t hi) {
        grad_queued_ += hi - lo;
        worker_->submit([g = model_->trainable().grads, lo, hi, r = replica_worker_comm_.get()](
                            Communicator&) { r->allreduce_sum(g + lo, hi - lo); });
      });
    {
      TraceScope fb("forward+backward", "phase");
      loss_sum += model_->forward_backward(micro[j], scale);
    }
    model_->set_grad_ready_hook({});
  }

  comm_->allreduce_sum(&loss_sum, 1);
  const double lr = cfg_.train.lr * lr_multiplier(schedule_, step_);
  TraceScope update("optimizer", "phase");
  const double grad_norm =
      comm_->size() > 1 ? data_parallel_update(lr) : optimizer_->step(*model_, lr, step_ + 1);
  ++step_;

  StepMetrics m;
  m.step = step_;
  m.loss = targets > 0 ? loss_sum / double(targets) : 0.0;
  m.lr = lr;
  m.grad_norm = grad_norm;
  m.tokens = tokens;
  m.targets = targets;
  m.step_time_s = seconds_since(t0);
  const CommTotals comm1 = comm_totals();
  m.comm_bytes = comm1.bytes - comm0.bytes;
  m.comm_s = comm1.blocked_s - comm0.blocked_s;
  m.comm_thread_s = comm1.thread_s - comm0.thread_s;
  m.tokens_per_s = double(tokens) / m.step_time_s;
  // LoRA computes no weight gradients of the frozen base: 4·N_matmul, not 6·N_matmul.
  const double per_token =
      cfg_.peft.method != "none"
          ? lora_train_flops_per_token(model_->config(), cfg_.data.seq_len, model_->trainable().n)
          : train_flops_per_token(model_->config(), cfg_.data.seq_len);
  // tokens are every process's; so is the peak: each process measured its own.
  const double achieved_gflops =
      per_token * double(tokens) / m.step_time_s / double(comm_->size()) / 1e9;
  if (peak_.gflops > 0 && achieved_gflops > peak_.gflops) {
    // Faster than the peak: the cached peak was measured low (a loaded machine, a cold
    // start). Re-measure; MFU is then against max(cached, re-measured, achieved) <= 1.
    peak_ = raise_matmul_peak(*be_, cfg_.train.precision, peak_, achieved_gflops);
    if (comm_->rank() == 0)
      std::fprintf(stderr,
                   "\nstep %lld ran at %.0f GFLOP/s, above the matrix-product peak: "
                   "re-measured, MFU is now against %s\n",
                   static_cast<long long>(step_), achieved_gflops, peak_.describe().c_str());
  }
  m.mfu = peak_.gflops > 0 ? achieved_gflops / peak_.gflops : 0.0;
  return m;
}

// A range of the gradient that the backward has finished: summed over the processes on
// the communication thread, whole (no_shard, zero1) or into its owners' shards
// (shard_grad_op).
void Trainer::reduce_when_ready(size_t lo, size_t hi) {
  const TrainableParams t = model_->trainable();
  grad_queued_ += hi - lo;
  if (update_strategy_ != ShardStrategy::Zero2) {
    worker_->submit([g = t.grads, lo, hi](Communicator& c) { c.allreduce_sum(g + lo, hi - lo); });
    return;
  }
  const auto p = split_ranges(shard_ranges(t.n, comm_->size()), lo, hi);
  const auto& mine = p[size_t(comm_->rank())];
  float* out = piece_in_shard(grad_shard_.get(), shard_.first, lo, mine);
  worker_->submit(
      [g = t.grads, lo, out, p](Communicator& c) { c.reduce_scatter_sum(g + lo, out, p); });
}

// Gradients summed over processes (queued layer by layer during the backward), then
// AdamW: on everything (no_shard) or on this process's range followed by an all-gather
// of the parameters (zero1, shard_grad_op).
double Trainer::data_parallel_update(double lr) {
  const TrainableParams t = model_->trainable();
  const auto ranges = shard_ranges(t.n, comm_->size());
  double norm = 0;
  if (model_->sharded()) {
    // Gradients were reduced to their owners layer by layer during the backward, within
    // the group, and (hybrid_shard) summed over the replicas of the same range.
    worker_->wait_all();
    LATHE_CHECK(replica_comm_->size() == 1 || grad_queued_ == t.n, "internal: ", grad_queued_,
                " of ", t.n, " gradient values were summed over the replicas");
    double sq = be_->sum_squares(t.grads, t.n);
    group_comm_->allreduce_sum(&sq, 1);
    norm = std::sqrt(sq);
    optimizer_->update(t, t.grads, 0, t.n, lr, step_ + 1, norm);
    model_->refresh_compute_weights();
    return norm;
  }
  worker_->wait_all();
  LATHE_CHECK(grad_queued_ == t.n, "internal: the backward handed over ", grad_queued_, " of ", t.n,
              " gradient values for reduction");
  if (update_strategy_ == ShardStrategy::Zero2) {
    double sq = be_->sum_squares(grad_shard_.get(), shard_.second);
    comm_->allreduce_sum(&sq, 1);
    norm = std::sqrt(sq);
    optimizer_->update(t, grad_shard_.get(), shard_.first, shard_.second, lr, step_ + 1, norm);
  } else {
    norm = std::sqrt(be_->sum_squares(t.grads, t.n));
    optimizer_->update(t, t.grads + shard_.first, shard_.first, shard_.second, lr, step_ + 1, norm);
  }
  if (update_strategy_ != ShardStrategy::NoShard) {
    comm_->allgather(t.params, ranges);
    model_->refresh_compute_weights();
  }
  return norm;
}

// Packing fills each row with whole documents in sampler order until the next one would
// not fit; that one starts the next row (peek, so a checkpoint never loses it).
std::vector<const TokenRow*> Trainer::pack_next_row() {
  std::vector<const TokenRow*> docs;
  int64_t len = 0;
  for (;;) {
    const TokenRow& r = rows_[sampler_->peek()];
    const int64_t n = row_tokens(r, cfg_.data.seq_len);
    if (!docs.empty() && len + n > cfg_.data.seq_len) break;
    sampler_->next();
    docs.push_back(&r);
    len += n;
    if (len >= cfg_.data.seq_len) break;
  }
  return docs;
}

Batch Trainer::next_micro_batch(int64_t* tokens) {
  const int64_t B = cfg_.train.batch_size, seq = cfg_.data.seq_len;
  const bool pad_to_max = cfg_.data.padding == "max_length";
  std::vector<std::vector<const TokenRow*>> packed;
  for (int64_t i = 0; i < B; ++i) {
    if (cfg_.data.packing) {
      packed.push_back(pack_next_row());
    } else {
      packed.push_back({&rows_[sampler_->next()]});
    }
    for (const TokenRow* r : packed.back()) *tokens += row_tokens(*r, seq);
  }
  return make_packed_batch(packed, seq, pad_to_max);
}

void Trainer::run() {
  // Process 0 writes the run folder and the log; the others train silently beside it.
  const bool lead = comm_->rank() == 0;
  std::ofstream metrics;
  if (lead) {
    fs::create_directories(cfg_.output.dir);
    write_file_atomic((fs::path(cfg_.output.dir) / "config.yaml").string(), config_to_yaml(cfg_));
    metrics.open(fs::path(cfg_.output.dir) / "metrics.jsonl", std::ios::app);
    LATHE_CHECK(metrics, "cannot write ", cfg_.output.dir, "/metrics.jsonl");
    // Rebuilt from metrics.jsonl, which a resume has cut back to its checkpoint: the
    // charts continue across resumes with each step once.
    if (cfg_.output.tensorboard)
      tensorboard_ = std::make_unique<TensorBoardWriter>(rebuild_tensorboard(cfg_.output.dir));
    if (cfg_.output.dashboard > 0)
      dashboard_ = serve_run_dashboard(cfg_.output.dir, int(cfg_.output.dashboard), total_steps_);
  }
  // A log line that cannot be written (a full disk) stops the run rather than training on
  // without a record; the checkpoints written so far stay.
  auto check_log = [&] {
    if (!lead || metrics) return;
    const int err = errno;
    fail("cannot append to ", cfg_.output.dir, "/metrics.jsonl: ", std::strerror(err),
         err == ENOSPC ? " (the disk is full; free space)" : "", ". ", newest_checkpoint_note());
  };
  const bool tty = lead && ::isatty(2);
  const auto t_run = Clock::now();
  const int64_t first = step_;
  const bool has_eval = !eval_rows_.empty();
  // The eval before any update: the baseline the later evals are read against.
  if (step_ == 0 && has_eval) log_eval(metrics, tty);
  // Whether every process has agreed to stop: a SIGTERM reaches the processes at different
  // moments, so each acts on the stop flags summed after a step, never on its own flag, or
  // one would leave the loop (and wait in the checkpoint's collectives) while another trains.
  bool stopping = false;
  const auto& profile = cfg_.train.profile_steps;
  while (step_ < total_steps_ && !stopping) {
    if (!profile.empty() && step_ + 1 == int64_t(profile[0])) trace::start(comm_->rank());
    const StepMetrics m = step();
    if (!profile.empty() && (step_ == int64_t(profile[1]) || step_ == total_steps_) &&
        trace::recording())
      write_trace(int64_t(profile[0]), step_);
    nlohmann::json j = {{"step", m.step},
                        {"time", wall_clock_seconds()},
                        {"loss", m.loss},
                        {"lr", m.lr},
                        {"grad_norm", m.grad_norm},
                        {"tokens", m.tokens},
                        {"tokens_per_s", m.tokens_per_s},
                        {"step_time_s", m.step_time_s},
                        {"mfu", m.mfu}};
    j["peak_rss_mb"] = peak_rss_mb();
    if (!be_->host_accessible()) j["peak_device_mb"] = double(be_->peak_memory_bytes()) / 1048576;
    if (comm_->size() > 1) {
      j["comm_bytes"] = m.comm_bytes, j["comm_s"] = m.comm_s;
      j["comm_share"] = m.step_time_s > 0 ? m.comm_s / m.step_time_s : 0.0;
      if (worker_->threaded()) j["comm_thread_s"] = m.comm_thread_s;
      // Every process's communication and memory, under its own keys (and TensorBoard
      // tags): a slow link or a process near its memory limit shows by rank. 4 doubles a
      // process, summed into place: one small collective a step.
      std::vector<double> per_rank(4 * size_t(comm_->size()), 0.0);
      double* mine = per_rank.data() + 4 * comm_->rank();
      mine[0] = m.comm_s, mine[1] = m.comm_bytes, mine[2] = m.comm_thread_s;
      mine[3] = peak_rss_mb();
      comm_->allreduce_sum(per_rank.data(), per_rank.size());
      for (int r = 0; r < comm_->size(); ++r) {
        const std::string k = str_cat("rank", r, "/");
        const double* v = per_rank.data() + 4 * r;
        j[k + "comm_s"] = v[0], j[k + "comm_bytes"] = v[1], j[k + "peak_rss_mb"] = v[3];
        if (worker_->threaded()) j[k + "comm_thread_s"] = v[2];
      }
    }
    metrics << j.dump() << "\n";
    metrics.flush();
    check_log();
    if (tensorboard_) tensorboard_->log(j);
    // A stop request (SIGTERM) reaching any process stops all of them after the same step.
    double stop = g_stop ? 1.0 : 0.0;
    comm_->allreduce_sum(&stop, 1);
    stopping = stop > 0;
    if (lead && (m.step % cfg_.train.log_every == 0 || m.step == total_steps_)) {
      const double eta =
          seconds_since(t_run) / double(m.step - first) * double(total_steps_ - m.step);
      std::fprintf(stderr, "%sstep %lld/%lld  loss %.4f  lr %.3g  %.0f tok/s  MFU %.1f%%  ETA %s%s",
                   tty ? "\r\033[K" : "", static_cast<long long>(m.step),
                   static_cast<long long>(total_steps_), m.loss, m.lr, m.tokens_per_s, 100 * m.mfu,
                   format_duration(eta).c_str(), tty ? "" : "\n");
    }
    const bool save = cfg_.output.save_every > 0 && step_ % cfg_.output.save_every == 0;
    const bool eval = cfg_.train.eval_every > 0 && step_ % cfg_.train.eval_every == 0;
    if (has_eval && (save || eval)) log_eval(metrics, tty);
    if (save && last_save_step_ != step_) save_checkpoint();
  }
  if (tty) std::fprintf(stderr, "\n");
  if (stopping) {
    save_checkpoint();
    if (lead)
      std::fprintf(stderr,
                   "stopped at step %lld: checkpoint saved; resume with train.resume=true\n",
                   static_cast<long long>(step_));
    return;
  }
  if (has_eval && last_eval_step_ != step_) log_eval(metrics, tty);
  if (cfg_.output.save_every > 0 && last_save_step_ != step_) save_checkpoint();
  const std::string& sd =
      cfg_.output.save_dtype.empty() ? cfg_.train.precision : cfg_.output.save_dtype;
  const std::string final_dir = (fs::path(cfg_.output.dir) / "final").string();
  const DType dtype = sd == "bf16" ? DType::BF16 : DType::F32;
  try {
    save_final(final_dir, dtype, sd);
  } catch (const Error& e) {
    fail("the final model was not saved: ", e.what(), ". ", newest_checkpoint_note());
  }
}

}  // namespace lathe
