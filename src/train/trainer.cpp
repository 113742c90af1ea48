#include "train/trainer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/batcher.h"
#include "io/hf_export.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/datasets.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

std::atomic<bool> g_stop{false};

std::string join_names(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

using Clock = std::chrono::steady_clock;
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

// peft.* as the model's adapter setup; with peft.adapter the adapter's own config rules.
std::optional<AdapterSetup> adapter_setup(const Config& cfg) {
  if (cfg.peft.method == "none") return std::nullopt;
  AdapterSetup a;
  if (!cfg.peft.adapter.empty()) {
    a.lora = read_peft_config(cfg.peft.adapter);
    std::fprintf(stderr, "peft.adapter %s: r=%lld alpha=%g targets=%zu (its config replaces peft.r, "
                 "peft.alpha, peft.target_modules)\n", cfg.peft.adapter.c_str(),
                 static_cast<long long>(a.lora.r), a.lora.alpha, a.lora.targets.size());
    a.lora.dropout = cfg.peft.dropout;
  } else {
    a.lora.r = cfg.peft.r;
    a.lora.alpha = cfg.peft.alpha;
    a.lora.dropout = cfg.peft.dropout;
    a.lora.targets = parse_lora_targets(cfg.peft.target_modules);
  }
  std::string dtype = cfg.peft.base_dtype;
  if (dtype.empty()) dtype = cfg.peft.method == "qlora" ? "nf4" : cfg.train.precision;
  LATHE_CHECK(cfg.peft.method != "qlora" || dtype == "nf4", "peft.method=qlora stores the base as "
              "nf4, but peft.base_dtype=", dtype, ": use peft.method=lora for a ", dtype, " base");
  a.base_dtype = base_dtype_from_name(dtype);
  a.double_quant = cfg.peft.double_quant;
  return a;
}

}  // namespace

void Trainer::request_stop() { g_stop = true; }

Trainer::~Trainer() = default;

Trainer::Trainer(const Config& cfg) : cfg_(cfg) {
  LATHE_CHECK(!cfg_.model.path.empty(), "model.path is not set: give the HF model folder, e.g. model.path=path/to/model");
  LATHE_CHECK(!cfg_.data.train.empty(), "data.train is not set: give a jsonl file, e.g. data.train=train.jsonl");
  be_ = make_cpu_backend(int(cfg_.train.threads));

  const std::string config_path = (fs::path(cfg_.model.path) / "config.json").string();
  LlamaConfig mc = llama_config_from_json_file(config_path);
  if (!cfg_.model.special_tokens.empty()) {
    tokenizer_ = Tokenizer::load(cfg_.model.path);
    const std::vector<int32_t> ids = tokenizer_->add_special_tokens(read_special_tokens(cfg_.model.special_tokens));
    // The embedding grows to cover every new id (a vocabulary may already have spare rows).
    mc.vocab_size = std::max<int64_t>(mc.vocab_size, tokenizer_->vocab_size());
    std::fprintf(stderr, "special tokens: %zu requested, vocabulary now %d tokens, model rows %lld\n",
                 ids.size(), tokenizer_->vocab_size(), static_cast<long long>(mc.vocab_size));
  }
  model_config_json_ = llama_config_to_json_text(mc, mc.torch_dtype);
  const std::optional<AdapterSetup> adapter = adapter_setup(cfg_);
  LATHE_CHECK(!(adapter && tokenizer_), "model.special_tokens with peft.method=", cfg_.peft.method,
              ": the new embedding rows would stay frozen and untrained; add special tokens in "
              "a full fine-tune (peft.method=none)");
  model_ = std::make_unique<LlamaModel>(mc, *be_, precision_from_name(cfg_.train.precision),
                                        cfg_.train.activation_checkpointing,
                                        adapter ? &*adapter : nullptr);
  SafetensorsModel weights(cfg_.model.path);
  if (tokenizer_)
    model_->load_growing_vocab(weights);
  else
    model_->load(weights);
  if (adapter) {
    if (!cfg_.peft.adapter.empty())
      load_peft_weights(cfg_.peft.adapter, model_->lora_table(), model_->lora_params());
    else
      init_lora_weights(model_->lora_table(), model_->lora_params(), cfg_.train.seed);
    model_->refresh_compute_weights();
    const FrozenBaseBytes fb = model_->frozen_base()->bytes();
    std::fprintf(stderr,
                 "%s: r=%lld alpha=%g on %s; %zu trainable parameters (%.3f%% of %zu); frozen "
                 "base %s: linear layers %.1f MiB (%.3f bytes/parameter), embedding, head and "
                 "norms %.1f MiB\n",
                 cfg_.peft.method.c_str(), static_cast<long long>(adapter->lora.r),
                 adapter->lora.alpha, join_names(lora_target_names(adapter->lora.targets)).c_str(),
                 model_->trainable().n, 100.0 * double(model_->trainable().n) / double(model_->num_params()),
                 model_->num_params(), base_dtype_name(adapter->base_dtype), double(fb.linear) / 1048576.0,
                 double(fb.linear) / double(std::max<size_t>(1, fb.linear_params)),
                 double(fb.other) / 1048576.0);
  }

  auto report = [](const char* what, const LoadedRows& d) {
    std::fprintf(stderr,
                 "%s: %lld rows, %lld tokens (%lld with loss); %lld truncated, %lld dropped, "
                 "%lld bad rows skipped; %.2fs%s\n",
                 what, static_cast<long long>(d.stats.rows), static_cast<long long>(d.stats.tokens),
                 static_cast<long long>(d.stats.targets), static_cast<long long>(d.stats.truncated),
                 static_cast<long long>(d.stats.dropped),
                 static_cast<long long>(d.stats.skipped_bad), d.seconds,
                 d.cache_path.empty() ? "" : (d.cache_hit ? " (cached)" : " (tokenized, cached)"));
    if (!d.stats.first_bad.empty()) std::fprintf(stderr, "  first skipped row: %s\n", d.stats.first_bad.c_str());
  };
  LoadedRows train = load_rows(cfg_, cfg_.data.train, mc.vocab_size, tokenizer_.get());
  report("train data", train);
  rows_ = std::move(train.rows);
  if (!cfg_.data.eval.empty()) {
    LoadedRows eval = load_rows(cfg_, cfg_.data.eval, mc.vocab_size, tokenizer_.get());
    report("eval data", eval);
    eval_rows_ = std::move(eval.rows);
  } else if (cfg_.data.test_split > 0) {
    split_eval_rows(cfg_.data.test_split, cfg_.train.seed);
  }
  sampler_ = std::make_unique<Sampler>(rows_.size(), cfg_.data.shuffle, cfg_.train.seed);

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
  const int64_t rows_per_step = cfg_.train.batch_size * cfg_.train.grad_accum;
  const int64_t steps_per_epoch = std::max<int64_t>(1, (epoch_rows + rows_per_step - 1) / rows_per_step);
  total_steps_ = cfg_.train.max_steps > 0
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
  optimizer_ = std::make_unique<AdamW>(*be_, n, os);
  if (cfg_.train.resume) {
    if (auto latest = checkpoint_latest(cfg_.output.dir)) {
      CheckpointState s =
          checkpoint_load(*latest, model_->trainable().params, optimizer_->m(), optimizer_->v(), n);
      LATHE_CHECK(s.seed == cfg_.train.seed, *latest, ": written with train.seed=", s.seed,
                  " but this run has train.seed=", cfg_.train.seed,
                  ": resume with the same seed or start a new output.dir");
      model_->refresh_compute_weights();
      sampler_->restore(s.sampler);
      step_ = s.step;
      std::fprintf(stderr, "resumed from %s (step %lld)\n", latest->c_str(),
                   static_cast<long long>(step_));
    } else {
      std::fprintf(stderr, "train.resume=true but %s/checkpoints has no checkpoint: starting from step 0\n",
                   cfg_.output.dir.c_str());
    }
  }
  peak_gflops_ = matmul_peak_gflops_cached(*be_, cfg_.train.precision, false);
}

StepMetrics Trainer::step() {
  const auto t0 = Clock::now();
  const int64_t A = cfg_.train.grad_accum;
  std::vector<Batch> micro;
  int64_t targets = 0, tokens = 0;
  for (int64_t j = 0; j < A; ++j) {
    micro.push_back(next_micro_batch(&tokens));
    targets += micro.back().num_targets();
  }

  // The step's loss is the mean over all its target tokens, whatever the split into
  // micro-batches, so each micro-batch's gradient is scaled by 1/targets of the step.
  model_->zero_grads();
  double loss_sum = 0;
  const float scale = targets > 0 ? 1.0f / float(targets) : 0.0f;
  for (size_t j = 0; j < micro.size(); ++j) {
    // LoRA dropout masks follow from (seed, step, micro-batch), so a resumed run draws the same.
    model_->set_dropout_seed(cfg_.train.seed * 0x100000001b3ull + uint64_t(step_ * A) + j);
    loss_sum += model_->forward_backward(micro[j], scale);
  }

  const double lr = cfg_.train.lr * lr_multiplier(schedule_, step_);
  const double grad_norm = optimizer_->step(*model_, lr, step_ + 1);
  ++step_;

  StepMetrics m;
  m.step = step_;
  m.loss = targets > 0 ? loss_sum / double(targets) : 0.0;
  m.lr = lr;
  m.grad_norm = grad_norm;
  m.tokens = tokens;
  m.targets = targets;
  m.step_time_s = seconds_since(t0);
  m.tokens_per_s = double(tokens) / m.step_time_s;
  const double flops = train_flops_per_token(model_->config(), cfg_.data.seq_len) * double(tokens);
  m.mfu = peak_gflops_ > 0 ? flops / m.step_time_s / (peak_gflops_ * 1e9) : 0.0;
  return m;
}

// Holds out a seeded random share of the training rows for eval; the rest keep their
// file order (the sampler shuffles them per epoch as usual).
void Trainer::split_eval_rows(double share, uint64_t seed) {
  const size_t n = rows_.size();
  const size_t k = std::min(n - 1, std::max<size_t>(1, size_t(std::llround(share * double(n)))));
  Sampler pick(n, true, seed ^ 0x5eed5b1700000000ull, 0, 1);
  std::vector<bool> held(n, false);
  for (size_t i = 0; i < k; ++i) held[pick.next()] = true;
  std::vector<TokenRow> train;
  for (size_t i = 0; i < n; ++i) (held[i] ? eval_rows_ : train).push_back(std::move(rows_[i]));
  rows_ = std::move(train);
  std::fprintf(stderr, "data.test_split=%g: %zu rows held out for eval, %zu for training\n", share,
               eval_rows_.size(), rows_.size());
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

double Trainer::evaluate() {
  // Mean token loss over every eval row, in file order, with the micro-batch size.
  double loss = 0;
  int64_t targets = 0;
  const size_t B = size_t(cfg_.train.batch_size);
  for (size_t i = 0; i < eval_rows_.size(); i += B) {
    std::vector<const TokenRow*> rows;
    for (size_t j = i; j < std::min(eval_rows_.size(), i + B); ++j) rows.push_back(&eval_rows_[j]);
    const Batch b = make_batch(rows, cfg_.data.seq_len, cfg_.data.padding == "max_length");
    loss += model_->forward(b, nullptr);
    targets += b.num_targets();
  }
  return targets > 0 ? loss / double(targets) : 0.0;
}

void Trainer::save_checkpoint() {
  CheckpointState s;
  s.step = step_;
  s.sampler = sampler_->state();
  s.seed = cfg_.train.seed;
  const TrainableParams t = model_->trainable();
  s.num_params = t.n;
  s.model_config_json = nlohmann::json::parse(model_config_json_).dump();
  checkpoint_save(cfg_.output.dir, s, {t.params, optimizer_->m(), optimizer_->v(), t.n},
                  cfg_.output.keep_last);
}

void Trainer::log_eval(std::ostream& metrics, bool tty) {
  const double loss = evaluate();
  metrics << nlohmann::json{{"step", step_}, {"eval_loss", loss}, {"eval_ppl", std::exp(loss)}}.dump()
          << "\n";
  metrics.flush();
  std::fprintf(stderr, "%sstep %lld  eval loss %.4f  ppl %.2f\n", tty ? "\r\033[K" : "",
               static_cast<long long>(step_), loss, std::exp(loss));
}

void Trainer::run() {
  fs::create_directories(cfg_.output.dir);
  {
    std::ofstream f(fs::path(cfg_.output.dir) / "config.yaml");
    f << config_to_yaml(cfg_);
  }
  std::ofstream metrics(fs::path(cfg_.output.dir) / "metrics.jsonl", std::ios::app);
  LATHE_CHECK(metrics, "cannot write ", cfg_.output.dir, "/metrics.jsonl");
  const bool tty = ::isatty(2);
  const auto t_run = Clock::now();
  const int64_t first = step_;
  // The eval loss before any update: the baseline the later evals are read against.
  if (step_ == 0 && !eval_rows_.empty()) log_eval(metrics, tty);
  while (step_ < total_steps_ && !g_stop) {
    const StepMetrics m = step();
    nlohmann::json j = {{"step", m.step},          {"loss", m.loss},
                        {"lr", m.lr},              {"grad_norm", m.grad_norm},
                        {"tokens", m.tokens},      {"tokens_per_s", m.tokens_per_s},
                        {"step_time_s", m.step_time_s}, {"mfu", m.mfu}};
    metrics << j.dump() << "\n";
    metrics.flush();
    if (m.step % cfg_.train.log_every == 0 || m.step == total_steps_) {
      const double eta = seconds_since(t_run) / double(m.step - first) * double(total_steps_ - m.step);
      std::fprintf(stderr, "%sstep %lld/%lld  loss %.4f  lr %.3g  %.0f tok/s  MFU %.1f%%  ETA %s%s",
                   tty ? "\r\033[K" : "", static_cast<long long>(m.step),
                   static_cast<long long>(total_steps_), m.loss, m.lr, m.tokens_per_s,
                   100 * m.mfu, format_duration(eta).c_str(), tty ? "" : "\n");
    }
    const bool save = cfg_.output.save_every > 0 && step_ % cfg_.output.save_every == 0;
    if (save && !eval_rows_.empty()) log_eval(metrics, tty);
    if (save) save_checkpoint();
  }
  if (tty) std::fprintf(stderr, "\n");
  if (g_stop) {
    save_checkpoint();
    std::fprintf(stderr, "stopped at step %lld: checkpoint saved; resume with train.resume=true\n",
                 static_cast<long long>(step_));
    return;
  }
  if (!eval_rows_.empty() && !(cfg_.output.save_every > 0 && step_ % cfg_.output.save_every == 0))
    log_eval(metrics, tty);
  if (cfg_.output.save_every > 0 && step_ % cfg_.output.save_every != 0) save_checkpoint();
  const std::string& sd = cfg_.output.save_dtype.empty() ? cfg_.train.precision : cfg_.output.save_dtype;
  const std::string final_dir = (fs::path(cfg_.output.dir) / "final").string();
  const DType dtype = sd == "bf16" ? DType::BF16 : DType::F32;
  if (model_->has_adapters()) {
    save_peft_adapter(final_dir, model_->lora_table(), model_->lora_params(), dtype,
                      fs::absolute(cfg_.model.path).lexically_normal().string());
    std::fprintf(stderr, "saved %s (PEFT LoRA adapter, %s); merge it with: lathe merge --base %s "
                 "--adapter %s -o merged\n", final_dir.c_str(), sd.c_str(), cfg_.model.path.c_str(),
                 final_dir.c_str());
    return;
  }
  export_hf_model(*model_, final_dir, dtype, cfg_.model.path, tokenizer_.get());
  std::fprintf(stderr, "saved %s (%s)\n", final_dir.c_str(), sd.c_str());
}

}  // namespace lathe
