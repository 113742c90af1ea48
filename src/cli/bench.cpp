// lathe bench: training throughput, MFU and memory of a model shape on this machine,
// or (--peak) the matrix-product peak that MFU is measured against.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/onednn_matmul.h"
#include "backend/peak.h"
#include "backend/select.h"
#include "cli/verbs.h"
#include "core/cpu_isa.h"
#include "core/json.h"
#include "io/hf_export.h"
#include "model/llama.h"
#include "train/optimizer.h"

namespace lathe::cli {
namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point g_process_start = Clock::now();

struct BenchOptions {
  std::string model_config;
  int64_t batch = 4, seq = 256, steps = 5, warmup = 1;
  int threads = 0;
  std::string device = "auto";
  std::string precision = "bf16";
  bool checkpointing = false;
  bool peak = false;
  std::string save_model;
  bool profile = false;
  std::string peft = "none";  // lora | qlora
  int64_t lora_r = 16;
  std::vector<std::string> lora_targets = {"all-linear"};
};

// The datasheet's dense bf16 tensor-core rate of the GPUs we compare against, TFLOP/s
// (H100 SXM: 989; the PCIe card's 756), recognised by the name in the backend's
// description; 0 (reported as null) for any other device. The measured cuBLASLt peak is
// the honest denominator; this one is the number published comparisons use.
double datasheet_bf16_tflops(const std::string& description) {
  if (description.rfind("cuda", 0) != 0) return 0;
  if (description.find("H100") != std::string::npos)
    return description.find("PCIe") != std::string::npos ? 756.0 : 989.0;
  if (description.find("H200") != std::string::npos) return 989.0;  // H100 SXM's tensor cores
  return 0;
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

int run_bench(const BenchOptions& o) {
  auto be = make_backend(o.device, o.threads);
  std::fprintf(stderr, "device: %s\n", be->description().c_str());
  if (o.profile) be = make_profiling_backend(std::move(be));
  if (o.peak) {
    const MatmulPeak fp32 = matmul_peak(*be, "fp32", true);
    const MatmulPeak bf16 = matmul_peak(*be, "bf16", true);
    nlohmann::json j = {{"backend", be->name()},
                        {"cpu", cpu_model_name()},
                        {"cpu_kernels_isa", cpu_isa_name(cpu_isa())},
                        {"onednn_isa", onednn_cpu_isa_name()},
                        {"threads", be->threads()},
                        {"matmul_peak_gflops", fp32.gflops},
                        {"matmul_peak_gflops_this_run", fp32.measured_gflops},
                        {"matmul_peak_gflops_bf16", bf16.gflops},
                        {"matmul_peak_gflops_bf16_this_run", bf16.measured_gflops},
                        {"bf16_kernels", be->bf16_kernels()},
                        {"saved_to", fp32.path},
                        {"saved_to_bf16", bf16.path}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  const auto t_start = g_process_start;
  const LlamaConfig cfg = llama_config_from_json_file(o.model_config);
  std::optional<AdapterSetup> adapter;
  if (o.peft != "none") {
    adapter.emplace();
    adapter->lora.r = o.lora_r;
    adapter->lora.alpha = double(2 * o.lora_r);
    adapter->lora.targets = parse_lora_targets(o.lora_targets);
    adapter->base_dtype = o.peft == "qlora" ? BaseDtype::NF4 : base_dtype_from_name(o.precision);
  }
  LlamaModel model(cfg, *be, precision_from_name(o.precision), o.checkpointing,
                   adapter ? &*adapter : nullptr);
  model.init_random(1);
  if (!o.save_model.empty()) {
    // A randomly initialised HF folder of this shape, for start-up and peer measurements.
    export_hf_model(model, o.save_model,
                    model.precision() == Precision::BF16 ? DType::BF16 : DType::F32, "");
    std::fprintf(stderr, "saved %s\n", o.save_model.c_str());
    return 0;
  }
  OptimizerSettings os;
  os.grad_clip = 1.0;
  os.weight_decay = 0.0;
  AdamW opt(*be, model.trainable().n, os);

  Batch b;
  b.B = o.batch, b.T = o.seq;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(cfg.vocab_size - 1));
  for (int64_t i = 0; i < b.B * b.T; ++i) b.input_ids.push_back(tok(rng));
  b.targets.resize(b.input_ids.size());
  for (int64_t i = 0; i < b.B * b.T; ++i)
    b.targets[size_t(i)] = (i % b.T == b.T - 1) ? -100 : b.input_ids[size_t(i + 1)];
  const float scale = 1.0f / float(b.num_targets());

  // Measured now, next to the steps: this machine's speed drifts by 10-20% over minutes,
  // and MFU should compare the two under the same conditions.
  MatmulPeak peak = matmul_peak(*be, o.precision, true);
  std::fprintf(stderr, "MFU against the matrix-product peak: %s\n", peak.describe().c_str());
  double startup = 0;
  std::vector<double> times;
  for (int64_t s = 0; s < o.warmup + o.steps; ++s) {
    const auto t0 = Clock::now();
    if (s == 0) startup = std::chrono::duration<double>(t0 - t_start).count();
    model.zero_grads();
    model.forward_backward(b, scale);
    opt.step(model, 1e-4, s + 1);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s >= o.warmup) times.push_back(dt);
  }
  std::sort(times.begin(), times.end());
  const double step_time = times[times.size() / 2];
  const double tokens = double(b.B * b.T);
  const double flops = (adapter ? lora_train_flops_per_token(cfg, b.T, model.trainable().n)
                                : train_flops_per_token(cfg, b.T)) *
                       tokens;
  const double achieved_gflops = flops / step_time / 1e9;
  if (achieved_gflops > peak.gflops) {
    peak = raise_matmul_peak(*be, o.precision, peak, achieved_gflops);
    std::fprintf(stderr, "the steps ran above the peak: re-measured, MFU against %s\n",
                 peak.describe().c_str());
  }
  nlohmann::json j = {{"engine", "lathe"},
                      {"cpu", cpu_model_name()},
                      {"cpu_kernels_isa", cpu_isa_name(cpu_isa())},
                      {"onednn_isa", onednn_cpu_isa_name()},
                      {"precision", o.precision},
                      {"device", be->description()},
                      {"threads", be->threads()},
                      {"batch", b.B},
                      {"seq", b.T},
                      {"params", model.num_params()},
                      {"activation_checkpointing", o.checkpointing},
                      {"tokens_per_s", tokens / step_time},
                      {"step_time_s", step_time},
                      {"model_tflop_per_step", flops / 1e12},
                      {"matmul_peak_gflops", peak.gflops},
                      {"matmul_peak_gflops_this_run", peak.measured_gflops},
                      {"bf16_kernels", o.precision == "bf16" && be->bf16_kernels()},
                      {"mfu", achieved_gflops / peak.gflops},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"startup_to_first_step_s", startup},
                      {"peft", o.peft},
                      {"trainable_params", model.trainable().n}};
  if (adapter) {
    const FrozenBaseBytes fb = model.frozen_base()->bytes();
    j["lora_r"] = o.lora_r;
    j["frozen_base_dtype"] = base_dtype_name(adapter->base_dtype);
    j["frozen_linear_bytes_per_param"] = double(fb.linear) / double(fb.linear_params);
    j["frozen_linear_mb"] = double(fb.linear) / 1048576.0;
    j["frozen_other_mb"] = double(fb.other) / 1048576.0;
  }
  if (be->name() == "cuda") {
    const double datasheet = datasheet_bf16_tflops(be->description());
    j["mfu_datasheet"] = datasheet > 0 ? nlohmann::json(achieved_gflops / (datasheet * 1e3))
                                       : nlohmann::json(nullptr);
    j["datasheet_tflops"] = datasheet > 0 ? nlohmann::json(datasheet) : nlohmann::json(nullptr);
    j["peak_gpu_memory_mb"] = double(be->peak_memory_bytes()) / 1048576.0;
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("bench", "Measure training tokens/s, MFU and memory on this machine");
  auto o = std::make_shared<BenchOptions>();
  cmd->add_option("--model-config", o->model_config, "HF config.json of the model shape");
  cmd->add_option("--batch", o->batch, "micro-batch size")->capture_default_str();
  cmd->add_option("--seq", o->seq, "tokens per row")->capture_default_str();
  cmd->add_option("--steps", o->steps, "timed steps (median reported)")->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "untimed steps first")->capture_default_str();
  cmd->add_option("--threads", o->threads, "0 = all cores")->capture_default_str();
  cmd->add_option("--device", o->device,
                  "cpu, cuda, or auto (cuda if this build has it and a GPU is visible)")
      ->capture_default_str();
  cmd->add_option("--precision", o->precision, "fp32 or bf16")->capture_default_str();
  cmd->add_flag("--activation-checkpointing", o->checkpointing, "recompute layers in backward");
  cmd->add_option("--save-model", o->save_model,
                  "write the randomly initialised model to this HF folder and exit");
  cmd->add_flag("--profile", o->profile, "print the time spent in each op (all steps)");
  cmd->add_flag("--peak", o->peak,
                "only measure the matrix-product peaks (GFLOP/s, fp32 and bf16 products)");
  cmd->add_option("--peft", o->peft,
                  "none, lora (frozen base in the precision) or qlora (NF4 base)")
      ->check(CLI::IsMember({"none", "lora", "qlora"}))
      ->capture_default_str();
  cmd->add_option("--lora-r", o->lora_r, "LoRA rank (alpha = 2r)")->capture_default_str();
  cmd->add_option("--lora-targets", o->lora_targets, "projections to adapt, or all-linear");
  return [o]() {
    if (!o->peak && o->model_config.empty()) {
      std::fprintf(stderr, "error: lathe bench needs --model-config FILE (or --peak)\n");
      return 2;
    }
    return run_bench(*o);
  };
}

}  // namespace lathe::cli
