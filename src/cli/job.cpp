// lathe job slurm|k8s|ray CONFIG [overrides] [--nodes N] [--gpus-per-node G | --procs-per-node P]
// [--name NAME] [--image IMAGE] [--output FILE] ...: a ready cluster job file for
// data-parallel training, with the resolved config embedded.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/verbs.h"
#include "core/error.h"
#include "dist/job_files.h"
#include "train/config.h"

namespace lathe::cli {
namespace {

namespace fs = std::filesystem;

struct JobOptions {
  std::string target, config, name, image, output, config_path, partition;
  std::string time = "24:00:00";
  std::string lathe = "lathe";
  std::vector<std::string> overrides;
  int64_t nodes = 1, gpus_per_node = 0, procs_per_node = 1, cpus_per_task = 8;
};

int run_job(const JobOptions& o, bool time_given) {
  LATHE_CHECK(o.image.empty() || o.target == "k8s", "--image applies to k8s jobs only");
  LATHE_CHECK(o.partition.empty() || o.target == "slurm", "--partition applies to slurm jobs only");
  LATHE_CHECK(!time_given || o.target == "slurm", "--time applies to slurm jobs only");
  // Loading applies and checks the overrides now, on this machine, before any node waits.
  const Config cfg = load_config(o.config, o.overrides);

  JobSpec spec;
  if (o.config_path.empty())
    spec.config_yaml = config_to_yaml(cfg);
  else
    spec.config_path = o.config_path, spec.overrides = o.overrides;
  spec.name = o.name.empty() ? job_name_from(fs::path(cfg.output.dir).filename().string()) : o.name;
  spec.nodes = o.nodes;
  spec.gpus_per_node = o.gpus_per_node;
  spec.procs_per_node = o.procs_per_node;
  spec.cpus_per_task = o.cpus_per_task;
  spec.time = o.time;
  spec.partition = o.partition;
  spec.image = o.image;
  spec.lathe = o.lathe;
  spec.output_dir = cfg.output.dir;
  if (!o.output.empty()) spec.file_name = fs::path(o.output).filename().string();

  std::string text, submit;
  if (o.target == "slurm") {
    text = slurm_script(spec);
    submit = "sbatch " + shell_quote(o.output);
  } else if (o.target == "k8s") {
    text = k8s_manifest(spec);
    submit = "kubectl apply -f " + shell_quote(o.output);
  } else {
    text = ray_script(spec);
    const fs::path dir = fs::path(o.output).parent_path();
    submit = (dir.empty() ? "" : "cd " + shell_quote(dir.string()) + " && ") +
             "ray job submit --working-dir . -- python " + shell_quote(spec.file_name);
  }
  if (o.output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  {
    const fs::path dir = fs::path(o.output).parent_path();
    LATHE_CHECK(dir.empty() || fs::is_directory(dir), "--output ", o.output, ": folder ",
                dir.string(), " does not exist");
    std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
    LATHE_CHECK(out, "--output ", o.output, ": cannot write there");
    out << text;
    out.close();
    LATHE_CHECK(out, "--output ", o.output, ": write failed");
  }
  if (o.target != "k8s") {
    std::error_code ec;
    fs::permissions(o.output,
                    fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                    fs::perm_options::add, ec);
  }
  const int64_t ppn = procs_per_node(spec);
  std::fprintf(stderr, "wrote %s: job '%s', %lld node(s) x %lld process(es)%s; submit: %s\n",
               o.output.c_str(), spec.name.c_str(), static_cast<long long>(spec.nodes),
               static_cast<long long>(ppn), spec.gpus_per_node > 0 ? " (one per GPU)" : "",
               submit.c_str());
  return 0;
}

}  // namespace

Action add_job(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "job",
      "Write a cluster job file for data-parallel training: slurm (sbatch script), k8s "
      "(Kubeflow MPIJob), ray (job entrypoint)");
  auto o = std::make_shared<JobOptions>();
  cmd->add_option("target", o->target, "slurm | k8s | ray")
      ->required()
      ->check(CLI::IsMember({"slurm", "k8s", "ray"}));
  cmd->add_option("config", o->config, "YAML config file")->required();
  cmd->add_option("overrides", o->overrides,
                  "section.key=value overrides, applied and checked now");
  cmd->add_option("--nodes", o->nodes, "machines")->check(CLI::PositiveNumber);
  auto* gpus =
      cmd->add_option("--gpus-per-node", o->gpus_per_node, "GPUs per machine: one process per GPU")
          ->check(CLI::PositiveNumber);
  auto* procs = cmd->add_option("--procs-per-node", o->procs_per_node,
                                "CPU processes per machine (without GPUs; default 1)")
                    ->check(CLI::PositiveNumber);
  gpus->excludes(procs);
  cmd->add_option("--cpus-per-task", o->cpus_per_task,
                  "cores (OpenMP threads) per process (default 8)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--name", o->name,
                  "job name: lowercase letters, digits, '-' (default: from output.dir)");
  cmd->add_option("--image", o->image, "k8s: container image with lathe, openmpi-bin, sshd");
  auto* time = cmd->add_option("--time", o->time, "slurm: time limit (default 24:00:00)");
  cmd->add_option("--partition", o->partition, "slurm: partition (default: the cluster's)");
  cmd->add_option("--lathe", o->lathe, "the lathe binary on the nodes (default: lathe on PATH)");
  cmd->add_option("--config-path", o->config_path,
                  "do not embed the config: the job reads it at this path (shared by the nodes), "
                  "with the overrides on its command line");
  cmd->add_option("-o,--output", o->output, "write the job file here (default: stdout)");
  cmd->footer(
      "The resolved config (overrides applied) is embedded: the Slurm script writes it from a "
      "heredoc, the Kubernetes manifest holds it in a ConfigMap, the Ray script writes it on "
      "every node. Jobs run `lathe train CONFIG train.resume=true`, so a requeued or restarted "
      "job continues from its last checkpoint. See docs/distributed.md.");
  return [o, time]() { return run_job(*o, time->count() > 0); };
}

}  // namespace lathe::cli
