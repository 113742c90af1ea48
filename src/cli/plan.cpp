// lathe plan CONFIG [section.key=value ...] --world-size N [--gpu-mem 24GiB] [--host-mem 256GiB]
// Per-process device and host memory of a training run for each sharding strategy, and
// the least-sharded setting that fits (src/train/memory_plan.h).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/verbs.h"
#include "core/error.h"
#include "train/config.h"
#include "train/memory_plan.h"

namespace lathe::cli {
namespace {

struct PlanOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string model_config;
  int64_t world_size = 1;
  int64_t procs_per_node = 0;
  std::string gpu_mem = "24GiB", host_mem = "256GiB", reserve = "1GiB";
  bool json = false;
};

int run_plan(PlanOptions o) {
  // `lathe plan --model-config f.json train.batch_size=8`: the first override lands in the
  // config slot.
  if (!o.config.empty() && o.config.find('=') != std::string::npos &&
      !std::filesystem::exists(o.config)) {
    o.overrides.insert(o.overrides.begin(), o.config);
    o.config.clear();
  }
  const Config cfg = load_config(o.config, o.overrides);
  std::string model_json = o.model_config;
  if (model_json.empty()) {
    LATHE_CHECK(!cfg.model.path.empty(),
                "lathe plan needs the model's shape: set model.path (its config.json is read) "
                "or pass --model-config FILE");
    model_json = (std::filesystem::path(cfg.model.path) / "config.json").string();
  }
  const LlamaConfig mc = llama_config_from_json_file(model_json);
  const double gpu = parse_byte_size(o.gpu_mem), host = parse_byte_size(o.host_mem);
  const double reserve = parse_byte_size(o.reserve);
  LATHE_CHECK(reserve < gpu, "--reserve ", o.reserve, " leaves nothing of --gpu-mem ", o.gpu_mem);
  const PlanInput in = plan_input_from_config(cfg, o.world_size, o.procs_per_node);
  const MemoryPlan plan = plan_memory(mc, in);
  const Recommendation rec = recommend_strategy(mc, in, gpu - reserve, host);
  const std::string out = o.json ? plan_json(mc, plan, rec, gpu - reserve, reserve, host)
                                 : plan_report(mc, plan, rec, gpu - reserve, reserve, host);
  std::printf("%s\n", out.c_str());
  return 0;
}

}  // namespace

Action add_plan(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "plan", "Memory per process for each sharding strategy, and the one to use");
  auto o = std::make_shared<PlanOptions>();
  cmd->add_option("config", o->config, "YAML config file (optional with --model-config)");
  cmd->add_option("overrides", o->overrides,
                  "section.key=value overrides, e.g. train.batch_size=8");
  cmd->add_option("--model-config", o->model_config,
                  "HF config.json of the model (default: model.path/config.json)");
  cmd->add_option("--world-size", o->world_size, "processes (GPUs) in the run")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--procs-per-node", o->procs_per_node,
                  "processes per node (hybrid_shard groups, host memory); 0 = min(world, 8)")
      ->capture_default_str();
  cmd->add_option("--gpu-mem", o->gpu_mem, "device memory per process")->capture_default_str();
  cmd->add_option("--host-mem", o->host_mem, "host memory per node")->capture_default_str();
  cmd->add_option("--reserve", o->reserve,
                  "device memory kept free (CUDA context, library workspaces, fragmentation)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "print the plan as JSON");
  return [o]() { return run_plan(*o); };
}

}  // namespace lathe::cli
