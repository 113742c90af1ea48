// Job files for data-parallel training on a cluster (lathe job slurm|k8s|ray) and the
// mpirun command line of `lathe launch`. Pure functions of their specs: no I/O, so the
// tests check the text directly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lathe {

struct JobSpec {
  std::string name = "lathe";  // job name: lowercase letters, digits, '-' (a Kubernetes name)
  // The resolved config (config_to_yaml), embedded in the job file, which writes it to a
  // file before it runs. Empty when config_path is set.
  std::string config_yaml;
  // Instead of embedding: a config file the job's nodes can read at this path, passed to
  // `lathe train` with `overrides` after it.
  std::string config_path;
  std::vector<std::string> overrides;
  int64_t nodes = 1;
  int64_t gpus_per_node = 0;      // > 0: one process per GPU; 0: CPU processes
  int64_t procs_per_node = 1;     // CPU processes per node (ignored when gpus_per_node > 0)
  int64_t cpus_per_task = 8;      // cores (OpenMP threads) per process
  std::string time = "24:00:00";  // Slurm --time
  std::string partition;          // Slurm --partition; "" = the cluster's default
  std::string image;              // Kubernetes: container image with lathe, OpenMPI, sshd
  std::string lathe = "lathe";    // the lathe binary as the job's nodes see it
  std::string output_dir;         // the config's output.dir (comments, Slurm's final/ check)
  std::string file_name;          // the job file's name, for the submit command in its comments
};

// Processes per node: gpus_per_node when > 0, else procs_per_node.
int64_t procs_per_node(const JobSpec& spec);
// Throws lathe::Error naming the field when the spec cannot make a valid job.
void validate_job(const JobSpec& spec);
// A valid job name from any text ("My Run_1.yaml" → "my-run-1-yaml"); "lathe" if none.
std::string job_name_from(const std::string& text);

// An sbatch script: #SBATCH lines, the config heredoc, `srun --mpi=pmix lathe train`.
std::string slurm_script(const JobSpec& spec);
// Kubernetes: a ConfigMap holding config.yaml, then a Kubeflow MPIJob (kubeflow.org/v2beta1)
// whose launcher runs mpirun over the worker pods; YAML documents separated by `---`.
std::string k8s_manifest(const JobSpec& spec);
// A Python entrypoint for `ray job submit --working-dir . -- python lathe_ray_job.py`:
// a STRICT_SPREAD placement group of one bundle per node, the config written on each of
// those nodes, a hostfile of their IPs, then mpirun from the driver.
std::string ray_script(const JobSpec& spec);

// `lathe launch`: the mpirun command line that starts nproc copies of binary.
struct LaunchSpec {
  int64_t nproc = 1;
  std::string hostfile;  // "" = this machine only
  std::string mpirun = "mpirun";
  std::string binary;                // this lathe (/proc/self/exe)
  std::vector<std::string> args;     // lathe's arguments: train my.yaml ...
  bool as_root = false;              // adds --allow-run-as-root
  int64_t local_cores = 0;           // physical cores here; nproc above → --oversubscribe
  int64_t omp_threads = 0;           // > 0: -x OMP_NUM_THREADS=K
  bool forward_omp_threads = false;  // -x OMP_NUM_THREADS (set in the environment, hostfile runs)
};
std::vector<std::string> mpirun_argv(const LaunchSpec& spec);

// Quotes for a POSIX shell only where needed: abc → abc, a b → 'a b', it's → 'it'\''s'.
std::string shell_quote(const std::string& arg);
std::string shell_join(const std::vector<std::string>& args);

}  // namespace lathe
