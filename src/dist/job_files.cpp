#include "dist/job_files.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string_view>

#include "core/error.h"

namespace lathe {
namespace {

constexpr std::string_view kHeredocEnd = "LATHE_CONFIG_EOF";
constexpr size_t kMaxNameLength = 40;  // pods are named <name>-worker-<i>, at most 63

bool name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) lines.push_back(line);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// The config text as embedded: trailing blank lines dropped, one final newline.
std::string config_text(const JobSpec& spec) {
  std::string out;
  for (const std::string& line : split_lines(spec.config_yaml)) out += line + "\n";
  return out;
}

// A YAML (and JSON) double-quoted string.
std::string yaml_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

// A Python string literal (double quotes; UTF-8 text stays as it is).
std::string py_quote(const std::string& s) { return yaml_quote(s); }

std::string yaml_flow_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + yaml_quote(items[i]);
  return out + "]";
}

// What follows `lathe train CONFIG`: the overrides when the config is referenced (an
// embedded config has them applied), then train.resume=true, so a requeued or restarted
// job continues from its last checkpoint (a first run, with none, starts from step 0).
std::vector<std::string> after_config(const JobSpec& spec) {
  std::vector<std::string> args;
  if (!spec.config_path.empty()) args = spec.overrides;
  args.push_back("train.resume=true");
  return args;
}

std::vector<std::string> train_args(const JobSpec& spec, const std::string& config_file) {
  std::vector<std::string> args = {spec.lathe, "train", config_file};
  for (const std::string& a : after_config(spec)) args.push_back(a);
  return args;
}

std::string file_or(const JobSpec& spec, const std::string& fallback) {
  return spec.file_name.empty() ? fallback : shell_quote(spec.file_name);
}

// " (runs/a)": the config's output.dir for comments, or nothing when not known.
std::string where(const JobSpec& spec) {
  std::string dir = spec.output_dir;
  std::replace(dir.begin(), dir.end(), '\n', ' ');
  return dir.empty() ? "" : " (" + dir + ")";
}

}  // namespace

int64_t procs_per_node(const JobSpec& spec) {
  return spec.gpus_per_node > 0 ? spec.gpus_per_node : spec.procs_per_node;
}

std::string job_name_from(const std::string& text) {
  std::string name;
  for (char c : text) {
    const char l = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    if (name_char(l) && l != '-')
      name += l;
    else if (!name.empty() && name.back() != '-')
      name += '-';
  }
  if (name.size() > kMaxNameLength) name.resize(kMaxNameLength);
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name.empty() ? "lathe" : name;
}

void validate_job(const JobSpec& spec) {
  const std::string& n = spec.name;
  const bool name_ok = !n.empty() && n.size() <= kMaxNameLength && n.front() != '-' &&
                       n.back() != '-' && std::all_of(n.begin(), n.end(), name_char);
  LATHE_CHECK(name_ok, "job name '", n, "': use up to ", kMaxNameLength,
              " lowercase letters, digits and '-', starting and ending with a letter or digit "
              "(a Kubernetes name), e.g. '",
              job_name_from(n), "'");
  LATHE_CHECK(spec.nodes >= 1, "--nodes must be at least 1 (got ", spec.nodes, ")");
  LATHE_CHECK(spec.gpus_per_node >= 0, "--gpus-per-node must be 0 or more (got ",
              spec.gpus_per_node, ")");
  LATHE_CHECK(spec.procs_per_node >= 1, "--procs-per-node must be at least 1 (got ",
              spec.procs_per_node, ")");
  LATHE_CHECK(spec.cpus_per_task >= 1, "--cpus-per-task must be at least 1 (got ",
              spec.cpus_per_task, ")");
  LATHE_CHECK(spec.config_yaml.empty() != spec.config_path.empty(),
              "a job needs either the config to embed or --config-path, not both");
  LATHE_CHECK(spec.config_path.empty() || spec.config_path.find('\n') == std::string::npos,
              "--config-path must be one line");
  LATHE_CHECK(spec.file_name.find('\n') == std::string::npos,
              "the job file's name must be one line");
  LATHE_CHECK(!spec.lathe.empty(), "--lathe: the lathe binary's path on the nodes is empty");
  LATHE_CHECK(!spec.time.empty() && spec.time.find_first_of(" \t\n'\"") == std::string::npos,
              "--time '", spec.time, "': use Slurm's format, e.g. 24:00:00 or 2-00:00:00");
  for (const std::string& line : split_lines(spec.config_yaml))
    LATHE_CHECK(line != kHeredocEnd, "the config contains a line '", kHeredocEnd,
                "', which ends the job file's heredoc");
}

std::string shell_quote(const std::string& arg) {
  const bool safe = !arg.empty() && std::all_of(arg.begin(), arg.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("_@%+=:,./-").find(c) != std::string_view::npos;
  });
  if (safe) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string shell_join(const std::vector<std::string>& args) {
  std::string out;
  for (const std::string& a : args) out += (out.empty() ? "" : " ") + shell_quote(a);
  return out;
}

// ---------------------------------------------------------------------------------------
// Slurm

std::string slurm_script(const JobSpec& spec) {
  validate_job(spec);
  const int64_t ppn = procs_per_node(spec);
  const bool gpus = spec.gpus_per_node > 0;
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# lathe data-parallel training: " << spec.nodes << " node(s) x " << ppn
    << (gpus ? " GPU process(es)" : " CPU process(es)") << " = " << spec.nodes * ppn
    << " processes.\n"
    << "# Generated by `lathe job slurm`. Submit: sbatch " << file_or(spec, "<this file>")
    << "; follow: tail -f " << spec.name << "-<job id>.out\n"
    << "# How it runs: docs/distributed.md.\n"
    << "#\n"
    << "#SBATCH --job-name=" << spec.name << "\n"
    << "# One Slurm task per training process: " << (gpus ? "one per GPU" : "processes per node")
    << ", on every node.\n"
    << "#SBATCH --nodes=" << spec.nodes << "\n"
    << "#SBATCH --ntasks-per-node=" << ppn << "\n";
  if (gpus)
    s << "# Each process sees the node's GPUs and takes the one of its local rank "
         "(SLURM_LOCALID).\n"
      << "#SBATCH --gpus-per-node=" << spec.gpus_per_node << "\n";
  s << "# Cores per process: lathe runs one OpenMP thread on each (OMP_NUM_THREADS below).\n"
    << "#SBATCH --cpus-per-task=" << spec.cpus_per_task << "\n"
    << "#SBATCH --time=" << spec.time << "\n";
  if (!spec.partition.empty()) s << "#SBATCH --partition=" << spec.partition << "\n";
  s << "# All processes log to <job name>-<job id>.out in the submit folder, appended across "
       "requeues.\n"
    << "#SBATCH --output=%x-%j.out\n"
    << "#SBATCH --open-mode=append\n"
    << "# 120 s before the time limit Slurm sends SIGTERM to this script (B:), which passes it "
       "on to\n"
    << "# the training processes: lathe finishes the current step, saves a checkpoint and "
       "exits 0.\n"
    << "# The script then requeues the job, and train.resume=true continues from that "
       "checkpoint\n"
    << "# (a run without a checkpoint starts from step 0). Raise 120 when a checkpoint takes "
       "longer.\n"
    << "#SBATCH --signal=B:TERM@120\n"
    << "#SBATCH --requeue\n"
    << "\n"
    << "set -euo pipefail\n"
    << "\n"
    << "# One OpenMP thread per core Slurm gave the process.\n"
    << "export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-" << spec.cpus_per_task << "}\"\n"
    << "\n";
  if (spec.config_path.empty()) {
    s << "# The resolved config (overrides applied and checked by `lathe job`), written to the "
         "submit\n"
      << "# folder, which the nodes of a Slurm cluster share.\n"
      << "CONFIG=\"${SLURM_SUBMIT_DIR:-$PWD}/" << spec.name << "-${SLURM_JOB_ID:-0}.yaml\"\n"
      << "cat > \"$CONFIG\" <<'" << kHeredocEnd << "'\n"
      << config_text(spec) << kHeredocEnd << "\n";
  } else {
    s << "# The config, at a path every node can read.\n"
      << "CONFIG=" << shell_quote(spec.config_path) << "\n";
  }
  s << "# Every node reads the config's paths (model.path, data.*; relative ones from the "
       "submit\n"
    << "# folder). output.dir" << where(spec)
    << " must be on storage the nodes share, or a "
       "requeued\n"
    << "# job cannot find its checkpoints.\n";
  const std::string cmd =
      shell_quote(spec.lathe) + " train \"$CONFIG\" " + shell_join(after_config(spec));
  s << "\n"
    << "requeue=0\n"
    << "started=$(date +%s)\n"
    << "# srun starts --ntasks-per-node processes on every node; --mpi=pmix gives each its rank\n"
    << "# (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID). One failed process ends the step.\n"
    << "srun --mpi=pmix --kill-on-bad-exit=1 " << cmd << " &\n"
    << "srun_pid=$!\n"
    << "# srun does not pass SIGTERM on (it kills its processes): scancel signals the job's "
       "steps,\n"
    << "# that is the processes, and not this script.\n"
    << "trap 'requeue=1; scancel --signal=TERM \"$SLURM_JOB_ID\" || true' TERM\n"
    << "status=0\n"
    << "wait \"$srun_pid\" || status=$?\n"
    << "# The trap interrupts wait; wait again until the processes have saved and exited.\n"
    << "while kill -0 \"$srun_pid\" 2>/dev/null; do\n"
    << "  status=0\n"
    << "  wait \"$srun_pid\" || status=$?\n"
    << "done\n"
    << "# srun may have exited between the interrupted wait (status 128+15) and the test above;\n"
    << "# bash keeps an exited child's status for the next wait.\n"
    << "if [ \"$requeue\" = 1 ] && [ \"$status\" -gt 128 ]; then\n"
    << "  status=0\n"
    << "  wait \"$srun_pid\" || status=$?\n"
    << "fi\n";
  if (!spec.output_dir.empty())
    s << "# A stop that came after the last step, while the final model was being written, "
         "leaves\n"
      << "# nothing to continue (and a requeued run without a checkpoint would start over).\n"
      << "if [ \"$requeue\" = 1 ] && [ -n \"$(find " << shell_quote(spec.output_dir + "/final")
      << " -newermt \"@$started\" -print -quit 2>/dev/null || true)\" ]; then\n"
      << "  echo \"lathe: the training had finished; not requeueing\"\n"
      << "  requeue=0\n"
      << "fi\n";
  s << "if [ \"$requeue\" = 1 ] && [ \"$status\" = 0 ]; then\n"
    << "  echo \"lathe: stopped before the time limit with a checkpoint; requeueing job "
       "$SLURM_JOB_ID\"\n"
    << "  # Slurm refuses to requeue a job that scancel ended, which then just stops.\n"
    << "  scontrol requeue \"$SLURM_JOB_ID\" || echo \"lathe: requeue refused; resubmit to "
       "continue\"\n"
    << "fi\n"
    << "exit \"$status\"\n";
  return s.str();
}

// ---------------------------------------------------------------------------------------
// Kubernetes (Kubeflow MPIJob)

std::string k8s_manifest(const JobSpec& spec) {
  validate_job(spec);
  LATHE_CHECK(!spec.image.empty(),
              "k8s: --image is required: a container image with lathe, OpenMPI (openmpi-bin) and "
              "sshd (openssh-server)");
  LATHE_CHECK(spec.image.find_first_of(" \t\n\"'") == std::string::npos, "--image '", spec.image,
              "' is not an image reference");
  const int64_t ppn = procs_per_node(spec);
  const bool gpus = spec.gpus_per_node > 0;
  const std::string config_map = spec.name + "-config";
  const bool embedded = spec.config_path.empty();
  const std::string mount = "/etc/lathe";
  const std::string config_file = embedded ? mount + "/config.yaml" : spec.config_path;

  std::vector<std::string> launcher = {
      "mpirun",    "--allow-run-as-root",
      "-np",       std::to_string(spec.nodes * ppn),
      "--bind-to", "none",
      "-x",        "OMP_NUM_THREADS=" + std::to_string(spec.cpus_per_task)};
  for (const std::string& a : train_args(spec, config_file)) launcher.push_back(a);

  std::ostringstream s;
  s << "# lathe data-parallel training on Kubernetes: a Kubeflow MPIJob (mpi-operator v2), "
    << spec.nodes << " worker pod(s)\n"
    << "# x " << ppn << (gpus ? " GPU process(es)" : " CPU process(es)") << " = "
    << spec.nodes * ppn << " processes. Generated by `lathe job k8s`.\n"
    << "# Submit: kubectl apply -f " << file_or(spec, "<this file>")
    << "; follow: kubectl logs -f job/" << spec.name << "-launcher\n"
    << "# Remove: kubectl delete -f " << file_or(spec, "<this file>")
    << ". Needs the MPI operator "
       "(github.com/kubeflow/mpi-operator).\n"
    << "# The image runs as root and needs lathe on PATH (or --lathe), openmpi-bin and\n"
    << "# openssh-server: the launcher starts the processes over ssh (keys from the operator).\n";
  s << "# The worker pods read the config's paths (model.path, data.*): put the model and data "
       "in the\n"
    << "# image or on a volume. output.dir" << where(spec)
    << " should be on a PersistentVolumeClaim mounted in\n"
    << "# the workers, or checkpoints and the final model go with the pods.\n";
  if (embedded) {
    s << "apiVersion: v1\n"
      << "kind: ConfigMap\n"
      << "metadata:\n"
      << "  name: " << config_map << "\n"
      << "  labels:\n"
      << "    app.kubernetes.io/name: lathe\n"
      << "    app.kubernetes.io/instance: " << spec.name << "\n"
      << "data:\n"
      << "  # The resolved config (overrides applied and checked by `lathe job`), mounted at "
      << config_file << ".\n"
      << "  config.yaml: |\n";
    for (const std::string& line : split_lines(spec.config_yaml))
      s << (line.empty() ? "" : "    " + line) << "\n";
    s << "---\n";
  }
  auto volumes = [&](const std::string& indent) {
    s << indent << "volumes:\n";
    if (embedded)
      s << indent << "  - name: config\n"
        << indent << "    configMap:\n"
        << indent << "      name: " << config_map << "\n";
    s << indent << "  # Processes on one node share memory through /dev/shm (64 MiB by default).\n"
      << indent << "  - name: shm\n"
      << indent << "    emptyDir:\n"
      << indent << "      medium: Memory\n";
  };
  auto mounts = [&](const std::string& indent) {
    s << indent << "volumeMounts:\n";
    if (embedded)
      s << indent << "  - name: config\n" << indent << "    mountPath: " << mount << "\n";
    s << indent << "  - name: shm\n" << indent << "    mountPath: /dev/shm\n";
  };
  s << "apiVersion: kubeflow.org/v2beta1\n"
    << "kind: MPIJob\n"
    << "metadata:\n"
    << "  name: " << spec.name << "\n"
    << "  labels:\n"
    << "    app.kubernetes.io/name: lathe\n"
    << "spec:\n"
    << "  # Training processes per worker pod" << (gpus ? ": one per GPU" : "") << ".\n"
    << "  slotsPerWorker: " << ppn << "\n"
    << "  mpiImplementation: OpenMPI\n"
    << "  sshAuthMountPath: /root/.ssh\n"
    << "  runPolicy:\n"
    << "    # When the job ends, delete pods still running; finished pods keep their logs.\n"
    << "    cleanPodPolicy: Running\n"
    << "    # A failed launcher is retried; train.resume=true continues from the last "
       "checkpoint.\n"
    << "    backoffLimit: 3\n"
    << "  mpiReplicaSpecs:\n"
    << "    Launcher:\n"
    << "      replicas: 1\n"
    << "      restartPolicy: OnFailure\n"
    << "      template:\n"
    << "        spec:\n"
    << "          containers:\n"
    << "            - name: launcher\n"
    << "              image: " << spec.image << "\n"
    << "              # mpirun reads the worker pods from the hostfile the operator mounts; "
       "--bind-to none\n"
    << "              # leaves the OpenMP threads of each process free to use its cores.\n"
    << "              command: " << yaml_flow_list(launcher) << "\n"
    << "              resources:\n"
    << "                requests:\n"
    << "                  cpu: 1\n";
  mounts("              ");
  volumes("          ");
  s << "    Worker:\n"
    << "      replicas: " << spec.nodes << "\n"
    << "      restartPolicy: OnFailure\n"
    << "      template:\n"
    << "        spec:\n"
    << "          containers:\n"
    << "            - name: worker\n"
    << "              image: " << spec.image << "\n"
    << "              # The workers wait for the launcher's ssh connections.\n"
    << "              command: [\"/usr/sbin/sshd\", \"-De\"]\n"
    << "              resources:\n"
    << "                requests:\n"
    << "                  cpu: " << ppn * spec.cpus_per_task << "\n";
  if (gpus)
    s << "                limits:\n"
      << "                  nvidia.com/gpu: " << spec.gpus_per_node << "\n";
  mounts("              ");
  volumes("          ");
  return s.str();
}

// ---------------------------------------------------------------------------------------
// Ray

std::string ray_script(const JobSpec& spec) {
  validate_job(spec);
  const int64_t ppn = procs_per_node(spec);
  const bool embedded = spec.config_path.empty();
  const std::string node_config =
      embedded ? "/tmp/lathe-" + spec.name + "/config.yaml" : spec.config_path;
  std::vector<std::string> args = train_args(spec, node_config);

  std::ostringstream s;
  s << "#!/usr/bin/env python3\n"
    << "\"\"\"lathe data-parallel training on a Ray cluster: " << spec.nodes << " node(s) x " << ppn
    << (spec.gpus_per_node > 0 ? " GPU process(es)" : " CPU process(es)") << " = "
    << spec.nodes * ppn << " processes.\n"
    << "\n"
    << "Generated by `lathe job ray`. Submit from the folder holding this file:\n"
    << "\n"
    << "    ray job submit --working-dir . -- python " << file_or(spec, "lathe_ray_job.py") << "\n"
    << "\n"
    << "Ray reserves one bundle per node (STRICT_SPREAD: every bundle on a different node),\n"
    << "writes the config on each of those nodes, and this driver runs mpirun over their IPs.\n"
    << "Every node needs lathe, OpenMPI (openmpi-bin) and the config's model and data paths;\n"
    << "the driver's node needs passwordless ssh to the others (mpirun starts processes over "
       "ssh).\n"
    << "Ray is used for placement only: the lathe processes are not Ray tasks.\n"
    << "\"\"\"\n"
    << "import os\n"
    << "import subprocess\n"
    << "import sys\n"
    << "import tempfile\n"
    << "\n"
    << "import ray\n"
    << "from ray.exceptions import GetTimeoutError\n"
    << "from ray.util.placement_group import placement_group, remove_placement_group\n"
    << "from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy\n"
    << "\n"
    << "NAME = " << py_quote(spec.name) << "\n"
    << "NODES = " << spec.nodes << "\n"
    << "PROCS_PER_NODE = " << ppn << "\n"
    << "GPUS_PER_NODE = " << spec.gpus_per_node << "\n"
    << "CPUS_PER_PROCESS = " << spec.cpus_per_task << "  # OpenMP threads of each process\n"
    << "PLACEMENT_TIMEOUT_S = 600\n"
    << "# Where each node finds the config.\n"
    << "CONFIG_PATH = " << py_quote(node_config) << "\n";
  if (embedded) {
    s << "# The resolved config (overrides applied and checked by `lathe job`).\n"
      << "CONFIG_YAML = (\n";
    for (const std::string& line : split_lines(spec.config_yaml))
      s << "    " << py_quote(line + "\n") << "\n";
    s << ")\n";
  } else {
    s << "CONFIG_YAML = None  # the nodes read CONFIG_PATH as it is\n";
  }
  s << "TRAIN_COMMAND = [";
  for (size_t i = 0; i < args.size(); ++i) s << (i ? ", " : "") << py_quote(args[i]);
  s << "]\n";
  s << "# Every node reads the config's paths (model.path, data.*). output.dir" << where(spec)
    << "\n"
    << "# should be an absolute path on storage the nodes share, to keep checkpoints and the\n"
    << "# final model in one place; lathe keeps the config it ran there (config.yaml).\n";
  s << "\n"
    << "\n"
    << "@ray.remote(num_cpus=1)\n"
    << "def prepare_node(config_path, config_yaml):\n"
    << "    \"\"\"Runs in one bundle: writes the config on its node, returns the node's IP.\"\"\"\n"
    << "    if config_yaml is not None:\n"
    << "        os.makedirs(os.path.dirname(config_path), exist_ok=True)\n"
    << "        with open(config_path, \"w\") as f:\n"
    << "            f.write(config_yaml)\n"
    << "    return ray.util.get_node_ip_address()\n"
    << "\n"
    << "\n"
    << "def main():\n"
    << "    ray.init()\n"
    << "    bundle = {\"CPU\": PROCS_PER_NODE * CPUS_PER_PROCESS}\n"
    << "    if GPUS_PER_NODE > 0:\n"
    << "        bundle[\"GPU\"] = GPUS_PER_NODE\n"
    << "    pg = placement_group([dict(bundle) for _ in range(NODES)], "
       "strategy=\"STRICT_SPREAD\",\n"
    << "                         name=NAME)\n"
    << "    try:\n"
    << "        try:\n"
    << "            ray.get(pg.ready(), timeout=PLACEMENT_TIMEOUT_S)\n"
    << "        except GetTimeoutError:\n"
    << "            sys.exit(f\"lathe: no room for {NODES} bundle(s) of {bundle} on {NODES} "
       "different nodes after \"\n"
    << "                     f\"{PLACEMENT_TIMEOUT_S} s; `ray status` shows the cluster's free "
       "resources\")\n"
    << "        ips = ray.get([\n"
    << "            prepare_node.options(scheduling_strategy=PlacementGroupSchedulingStrategy(\n"
    << "                placement_group=pg, placement_group_bundle_index=i)).remote(CONFIG_PATH, "
       "CONFIG_YAML)\n"
    << "            for i in range(NODES)\n"
    << "        ])\n"
    << "        # Not in this script's folder: Ray unpacks the submitted folder once per content "
       "hash and\n"
    << "        # shares it between jobs, so a second job submitted from the same folder would "
       "overwrite\n"
    << "        # the hostfile this job's mpirun reads.\n"
    << "        fd, hostfile = tempfile.mkstemp(prefix=NAME + \"-\", suffix=\".hostfile\")\n"
    << "        with os.fdopen(fd, \"w\") as f:\n"
    << "            for ip in ips:\n"
    << "                f.write(f\"{ip} slots={PROCS_PER_NODE}\\n\")\n"
    << "        cmd = [\"mpirun\", \"-np\", str(NODES * PROCS_PER_NODE), \"--hostfile\", "
       "hostfile,\n"
    << "               \"--bind-to\", \"none\", \"-x\", f\"OMP_NUM_THREADS={CPUS_PER_PROCESS}\"]\n"
    << "        if os.geteuid() == 0:\n"
    << "            cmd.append(\"--allow-run-as-root\")\n"
    << "        cmd += TRAIN_COMMAND\n"
    << "        print(\"lathe: nodes\", \", \".join(ips), flush=True)\n"
    << "        print(\"lathe: running\", \" \".join(cmd), flush=True)\n"
    << "        try:\n"
    << "            status = subprocess.call(cmd)\n"
    << "        finally:\n"
    << "            os.remove(hostfile)\n"
    << "    finally:\n"
    << "        remove_placement_group(pg)\n"
    << "    sys.exit(status)\n"
    << "\n"
    << "\n"
    << "if __name__ == \"__main__\":\n"
    << "    main()\n";
  return s.str();
}

// ---------------------------------------------------------------------------------------
// lathe launch

std::vector<std::string> mpirun_argv(const LaunchSpec& spec) {
  LATHE_CHECK(spec.nproc >= 1, "--nproc must be at least 1 (got ", spec.nproc, ")");
  LATHE_CHECK(!spec.args.empty(),
              "nothing to launch: put lathe's arguments after --, e.g. lathe launch --nproc 4 -- "
              "train my.yaml");
  std::vector<std::string> argv = {spec.mpirun, "-np", std::to_string(spec.nproc)};
  if (!spec.hostfile.empty()) {
    argv.push_back("--hostfile");
    argv.push_back(spec.hostfile);
  }
  // lathe runs OpenMP threads in each process; binding a process to one core would
  // put all of them there.
  argv.push_back("--bind-to");
  argv.push_back("none");
  // Open MPI gives this machine one slot per core and refuses more processes than slots.
  if (spec.hostfile.empty() && spec.local_cores > 0 && spec.nproc > spec.local_cores)
    argv.push_back("--oversubscribe");
  if (spec.as_root) argv.push_back("--allow-run-as-root");
  if (spec.omp_threads > 0) {
    argv.push_back("-x");
    argv.push_back("OMP_NUM_THREADS=" + std::to_string(spec.omp_threads));
  } else if (spec.forward_omp_threads) {
    argv.push_back("-x");
    argv.push_back("OMP_NUM_THREADS");
  }
  argv.push_back(spec.binary);
  for (const std::string& a : spec.args) argv.push_back(a);
  return argv;
}

}  // namespace lathe
