// Cluster job files (lathe job slurm|k8s|ray): the sbatch script passes `bash -n` and
// carries the right #SBATCH and srun lines; the Kubernetes manifest parses as a ConfigMap
// and a Kubeflow MPIJob with the schema's fields, its config equal to the input; the Ray
// entrypoint compiles with Python.
#include "dist/job_files.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/golden.h"
#include "support/command.h"
#include "train/config.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

struct Result {
  int status;
  std::string output;
};

Result sh(const std::string& cmd) {
  const testing::CommandResult r = testing::run_command(cmd + " 2>&1");
  return {r.status, r.out};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l))
    if (l == line) return true;
  return false;
}

// The quickstart config with overrides, including a string that needs quoting everywhere.
Config test_config() {
  return load_config(
      std::string(LATHE_SOURCE_DIR) + "/configs/quickstart.yaml",
      {"train.lr=3e-5", "dist.strategy=full_shard", "output.dir=/shared/runs/a b",
       "data.prompt_template=\"Q: \\\"{question}\\\" it's\\nA: \"", "train.max_steps=7"});
}

JobSpec test_spec(int64_t nodes, int64_t gpus) {
  JobSpec spec;
  spec.name = "llama-ft";
  spec.config_yaml = config_to_yaml(test_config());
  spec.nodes = nodes;
  spec.gpus_per_node = gpus;
  spec.procs_per_node = gpus > 0 ? 1 : 4;
  spec.cpus_per_task = 6;
  spec.image = "registry.example.com/lathe:0.1";
  spec.output_dir = "/shared/runs/a b";
  return spec;
}

// The config a job file embeds must load back to the same resolved config.
void expect_same_config(const std::string& embedded, const std::string& name) {
  const std::string path = testing::temp_dir("job_config_" + name) + "/config.yaml";
  write_file(path, embedded);
  EXPECT_EQ(config_to_yaml(load_config(path, {})), config_to_yaml(test_config()));
}

// ------------------------------------------------------------------------------ Slurm

TEST(JobSlurm, ScriptIsValidBashWithTheRightLines) {
  const JobSpec spec = test_spec(4, 8);
  const std::string script = slurm_script(spec);
  const std::string dir = testing::temp_dir("job_slurm");
  write_file(dir + "/job.sbatch", script);
  const Result syntax = sh("bash -n " + dir + "/job.sbatch");
  EXPECT_EQ(syntax.status, 0) << syntax.output;

  EXPECT_EQ(script.rfind("#!/bin/bash\n", 0), 0u);
  for (const char* line :
       {"#SBATCH --job-name=llama-ft", "#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8", "#SBATCH --cpus-per-task=6", "#SBATCH --time=24:00:00",
        "#SBATCH --output=%x-%j.out", "#SBATCH --signal=B:TERM@120", "#SBATCH --requeue"})
    EXPECT_TRUE(has_line(script, line)) << line << " not in:\n" << script;
  EXPECT_TRUE(has(script, "export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-6}\""));
  EXPECT_TRUE(has(script,
                  "srun --mpi=pmix --kill-on-bad-exit=1 lathe train \"$CONFIG\" "
                  "train.resume=true &"))
      << script;
  // The script's SIGTERM goes to the processes through scancel: srun itself would kill them.
  EXPECT_TRUE(
      has_line(script, "trap 'requeue=1; scancel --signal=TERM \"$SLURM_JOB_ID\" || true' TERM"))
      << script;
  EXPECT_FALSE(has(script, "kill -TERM")) << script;
  EXPECT_TRUE(has(script, "scontrol requeue"));
  EXPECT_TRUE(has(script, "saves a checkpoint"));
  // Every #SBATCH line comes before the first command, or sbatch ignores it.
  const size_t first_command = script.find("\nset -euo pipefail");
  EXPECT_LT(script.rfind("#SBATCH"), first_command);
}

TEST(JobSlurm, HeredocWritesTheResolvedConfig) {
  const JobSpec spec = test_spec(2, 0);
  const std::string script = slurm_script(spec);
  EXPECT_TRUE(has_line(script, "#SBATCH --ntasks-per-node=4"));
  EXPECT_FALSE(has(script, "--gpus-per-node"));
  // Run only the part that writes the config (up to the srun line) with a fake job
  // environment, then load what it wrote.
  const std::string dir = testing::temp_dir("job_slurm_heredoc");
  const std::string prefix = script.substr(0, script.find("\nrequeue=0"));
  write_file(dir + "/prefix.sh", prefix + "\necho \"$CONFIG\"\n");
  const Result r =
      sh("cd " + dir + " && SLURM_SUBMIT_DIR=" + dir + " SLURM_JOB_ID=42 bash prefix.sh");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, dir + "/llama-ft-42.yaml\n");
  expect_same_config(read_file(dir + "/llama-ft-42.yaml"), "slurm");
}

// The script's SIGTERM handling, with stand-ins for srun, scancel and scontrol: the TERM is
// passed to the processes through scancel, and the job requeued when they exit 0, unless
// they had already written this run's final model.
TEST(JobSlurm, TermStopsTheProcessesAndRequeues) {
  const std::string dir = testing::temp_dir("job_slurm_term");
  fs::create_directories(dir + "/bin");
  // srun: in mode "finished" the training ends (final/ written) before the signal comes;
  // it exits 0 once scancel has signalled the processes.
  write_file(dir + "/bin/srun",
             "#!/bin/bash\n"
             "[ \"$MODE\" = finished ] && mkdir -p \"$RUN/final\" && touch \"$RUN/final/x\"\n"
             "touch \"$SLURM_SUBMIT_DIR/started\"\n"
             "for _ in $(seq 200); do\n"
             "  [ -f \"$SLURM_SUBMIT_DIR/signalled\" ] && exit 0\n"
             "  sleep 0.05\n"
             "done\n"
             "exit 3\n");
  write_file(dir + "/bin/scancel",
             "#!/bin/sh\necho \"$@\" >>\"$SLURM_SUBMIT_DIR/scancel.log\"\n"
             "touch \"$SLURM_SUBMIT_DIR/signalled\"\n");
  write_file(dir + "/bin/scontrol",
             "#!/bin/sh\necho \"$@\" >>\"$SLURM_SUBMIT_DIR/scontrol.log\"\n");
  ASSERT_EQ(sh("chmod +x " + dir + "/bin/*").status, 0);
  write_file(
      dir + "/run.sh",
      "cd \"$1\" && rm -rf sub && mkdir sub && cd sub\n"
      "PATH=\"" +
          dir +
          "/bin:$PATH\" SLURM_SUBMIT_DIR=\"$PWD\" SLURM_JOB_ID=7 MODE=\"$2\" "
          "RUN=\"$RUN\" bash ../job.sbatch >out.log 2>&1 &\n"
          "pid=$!\n"
          "for _ in $(seq 200); do [ -f started ] && break; sleep 0.05; done\n"
          "kill -TERM \"$pid\"\n"
          "status=0; wait \"$pid\" || status=$?\n"
          "echo \"status $status\"; cat out.log scancel.log; cat scontrol.log 2>/dev/null\n");
  for (const std::string mode : {"stop", "finished", "stale"}) {
    SCOPED_TRACE(mode);
    JobSpec spec = test_spec(1, 0);
    spec.output_dir = dir + "/run " + mode;  // with a space, as shell_quote must handle
    fs::remove_all(spec.output_dir);
    fs::create_directories(spec.output_dir);
    if (mode == "stale") {  // a final model from an earlier run in the same output.dir
      const std::string final_dir = spec.output_dir + "/final";
      fs::create_directories(final_dir);
      write_file(final_dir + "/x", "");
      const auto day_ago = fs::file_time_type::clock::now() - std::chrono::hours(24);
      fs::last_write_time(final_dir + "/x", day_ago);
      fs::last_write_time(final_dir, day_ago);
    }
    write_file(dir + "/job.sbatch", slurm_script(spec));
    const Result r = sh("RUN='" + spec.output_dir + "' bash " + dir + "/run.sh " + dir + " " +
                        (mode == "stale" ? "stop" : mode));
    EXPECT_TRUE(has(r.output, "status 0")) << r.output;
    EXPECT_TRUE(has_line(r.output, "--signal=TERM 7")) << r.output;
    if (mode == "finished") {
      EXPECT_TRUE(has(r.output, "the training had finished; not requeueing")) << r.output;
      EXPECT_FALSE(has_line(r.output, "requeue 7")) << r.output;
    } else {
      EXPECT_TRUE(has(r.output, "requeueing job 7")) << r.output;
      EXPECT_TRUE(has_line(r.output, "requeue 7")) << r.output;
    }
  }
}

TEST(JobSlurm, ReferencedConfigPassesOverridesOnTheCommandLine) {
  JobSpec spec = test_spec(1, 0);
  spec.config_yaml.clear();
  spec.config_path = "/shared/configs/my run.yaml";
  spec.overrides = {"train.lr=1e-5", "output.dir=/shared/it's"};
  spec.partition = "gpu";
  const std::string script = slurm_script(spec);
  EXPECT_FALSE(has(script, "LATHE_CONFIG_EOF"));
  EXPECT_TRUE(has_line(script, "CONFIG='/shared/configs/my run.yaml'")) << script;
  EXPECT_TRUE(has_line(script, "#SBATCH --partition=gpu"));
  EXPECT_TRUE(has(script,
                  "lathe train \"$CONFIG\" train.lr=1e-5 'output.dir=/shared/it'\\''s' "
                  "train.resume=true"))
      << script;
  const std::string dir = testing::temp_dir("job_slurm_ref");
  write_file(dir + "/job.sbatch", script);
  EXPECT_EQ(sh("bash -n " + dir + "/job.sbatch").status, 0);
}

// tests/dist/local_slurm.sh (the dist.local_slurm test) runs a generated script under a
// one-node Slurm started for the test: 2 processes under srun --mpi=pmix, whose losses must
// match mpirun -np 2, and a stop by SIGTERM, requeue and resume.

TEST(JobSpecCheck, BadSpecsAreErrors) {
  JobSpec spec = test_spec(1, 0);
  spec.name = "My_Job";
  EXPECT_THROW(slurm_script(spec), Error);
  try {
    slurm_script(spec);
  } catch (const Error& e) {
    EXPECT_TRUE(has(e.what(), "my-job")) << e.what();
  }
  spec = test_spec(0, 0);
  EXPECT_THROW(slurm_script(spec), Error);
  spec = test_spec(1, 0);
  spec.config_path = "/x.yaml";  // and an embedded config
  EXPECT_THROW(ray_script(spec), Error);
  spec = test_spec(1, 0);
  spec.image.clear();
  EXPECT_THROW(k8s_manifest(spec), Error);
  EXPECT_EQ(job_name_from("My Run_1.yaml"), "my-run-1-yaml");
  EXPECT_EQ(job_name_from("__"), "lathe");
  EXPECT_EQ(job_name_from(std::string(100, 'a')).size(), 40u);
}

// ------------------------------------------------------------------------------ Kubernetes

TEST(JobK8s, ManifestIsAConfigMapAndAnMpiJob) {
  const JobSpec spec = test_spec(3, 8);
  const std::string manifest = k8s_manifest(spec);
  const std::vector<YAML::Node> docs = YAML::LoadAll(manifest);
  ASSERT_EQ(docs.size(), 2u) << manifest;

  const YAML::Node& cm = docs[0];
  EXPECT_EQ(cm["apiVersion"].as<std::string>(), "v1");
  EXPECT_EQ(cm["kind"].as<std::string>(), "ConfigMap");
  EXPECT_EQ(cm["metadata"]["name"].as<std::string>(), "llama-ft-config");
  expect_same_config(cm["data"]["config.yaml"].as<std::string>(), "k8s");

  const YAML::Node& job = docs[1];
  EXPECT_EQ(job["apiVersion"].as<std::string>(), "kubeflow.org/v2beta1");
  EXPECT_EQ(job["kind"].as<std::string>(), "MPIJob");
  EXPECT_EQ(job["metadata"]["name"].as<std::string>(), "llama-ft");
  const YAML::Node s = job["spec"];
  EXPECT_EQ(s["slotsPerWorker"].as<int>(), 8);
  EXPECT_EQ(s["runPolicy"]["cleanPodPolicy"].as<std::string>(), "Running");
  EXPECT_EQ(s["mpiImplementation"].as<std::string>(), "OpenMPI");

  const YAML::Node launcher = s["mpiReplicaSpecs"]["Launcher"];
  EXPECT_EQ(launcher["replicas"].as<int>(), 1);
  const YAML::Node lc = launcher["template"]["spec"]["containers"][0];
  EXPECT_EQ(lc["image"].as<std::string>(), "registry.example.com/lathe:0.1");
  const auto command = lc["command"].as<std::vector<std::string>>();
  const std::vector<std::string> expected = {"mpirun",
                                             "--allow-run-as-root",
                                             "-np",
                                             "24",
                                             "--bind-to",
                                             "none",
                                             "-x",
                                             "OMP_NUM_THREADS=6",
                                             "lathe",
                                             "train",
                                             "/etc/lathe/config.yaml",
                                             "train.resume=true"};
  EXPECT_EQ(command, expected);

  const YAML::Node worker = s["mpiReplicaSpecs"]["Worker"];
  EXPECT_EQ(worker["replicas"].as<int>(), 3);
  const YAML::Node wspec = worker["template"]["spec"];
  const YAML::Node wc = wspec["containers"][0];
  EXPECT_EQ(wc["image"].as<std::string>(), "registry.example.com/lathe:0.1");
  EXPECT_EQ(wc["command"][0].as<std::string>(), "/usr/sbin/sshd");
  EXPECT_EQ(wc["resources"]["limits"]["nvidia.com/gpu"].as<int>(), 8);
  EXPECT_EQ(wc["resources"]["requests"]["cpu"].as<int>(), 48);
  // The ConfigMap is mounted where the command reads it.
  bool mounted = false;
  for (const YAML::Node& m : wc["volumeMounts"])
    if (m["name"].as<std::string>() == "config")
      mounted = m["mountPath"].as<std::string>() == "/etc/lathe";
  EXPECT_TRUE(mounted);
  bool volume = false;
  for (const YAML::Node& v : wspec["volumes"])
    if (v["name"].as<std::string>() == "config")
      volume = v["configMap"]["name"].as<std::string>() == "llama-ft-config";
  EXPECT_TRUE(volume);
}

TEST(JobK8s, CpuJobHasNoGpuLimits) {
  const JobSpec spec = test_spec(2, 0);
  const std::vector<YAML::Node> docs = YAML::LoadAll(k8s_manifest(spec));
  ASSERT_EQ(docs.size(), 2u);
  const YAML::Node s = docs[1]["spec"];
  EXPECT_EQ(s["slotsPerWorker"].as<int>(), 4);
  EXPECT_EQ(s["mpiReplicaSpecs"]["Worker"]["replicas"].as<int>(), 2);
  const YAML::Node wc = s["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0];
  EXPECT_FALSE(wc["resources"]["limits"]);
  const auto command =
      s["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"]
          .as<std::vector<std::string>>();
  EXPECT_EQ(command[3], "8");
}

TEST(JobK8s, ReferencedConfigHasNoConfigMap) {
  JobSpec spec = test_spec(1, 1);
  spec.config_yaml.clear();
  spec.config_path = "/data/my.yaml";
  spec.overrides = {"train.lr=2e-5"};
  const std::vector<YAML::Node> docs = YAML::LoadAll(k8s_manifest(spec));
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0]["kind"].as<std::string>(), "MPIJob");
  const auto command =
      docs[0]["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"]
          .as<std::vector<std::string>>();
  const std::vector<std::string> tail(command.end() - 4, command.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"train", "/data/my.yaml", "train.lr=2e-5",
                                            "train.resume=true"}));
}

// ------------------------------------------------------------------------------ Ray

TEST(JobRay, EntrypointCompilesAndPlacesOneBundlePerNode) {
  const JobSpec spec = test_spec(4, 8);
  const std::string script = ray_script(spec);
  const std::string dir = testing::temp_dir("job_ray");
  write_file(dir + "/lathe_ray_job.py", script);
  const Result r = sh("/usr/bin/python3 -m py_compile " + dir + "/lathe_ray_job.py");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(script, "import ray\n"));
  EXPECT_TRUE(has(script,
                  "placement_group([dict(bundle) for _ in range(NODES)], "
                  "strategy=\"STRICT_SPREAD\""))
      << script;
  EXPECT_TRUE(has_line(script, "NODES = 4"));
  EXPECT_TRUE(has_line(script, "PROCS_PER_NODE = 8"));
  EXPECT_TRUE(has_line(script, "GPUS_PER_NODE = 8"));
  EXPECT_TRUE(has(script, "bundle[\"GPU\"] = GPUS_PER_NODE"));
  EXPECT_TRUE(has(script, "PlacementGroupSchedulingStrategy("));
  EXPECT_TRUE(has(script, "ray.util.get_node_ip_address()"));
  EXPECT_TRUE(has(script,
                  "cmd = [\"mpirun\", \"-np\", str(NODES * PROCS_PER_NODE), "
                  "\"--hostfile\", hostfile,"))
      << script;
  EXPECT_TRUE(has(script, "slots={PROCS_PER_NODE}"));
  // The hostfile is the job's own: the folder the script runs in is Ray's unpacked copy of the
  // submitted folder, one per content hash, shared by every job submitted from that folder.
  EXPECT_TRUE(
      has(script, "fd, hostfile = tempfile.mkstemp(prefix=NAME + \"-\", suffix=\".hostfile\")"))
      << script;
  EXPECT_TRUE(has(script, "os.remove(hostfile)"));
  EXPECT_FALSE(has(script, "os.path.abspath(NAME")) << script;
  EXPECT_FALSE(has(script, ".config.yaml\"")) << script;
  EXPECT_TRUE(has_line(script,
                       "TRAIN_COMMAND = [\"lathe\", \"train\", "
                       "\"/tmp/lathe-llama-ft/config.yaml\", \"train.resume=true\"]"))
      << script;
  EXPECT_TRUE(has(script, "ray job submit --working-dir . -- python lathe_ray_job.py"));
}

TEST(JobRay, EmbeddedConfigIsTheResolvedConfig) {
  const std::string script = ray_script(test_spec(2, 0));
  const std::string dir = testing::temp_dir("job_ray_config");
  // Python evaluates the literal exactly as the script would and writes it out.
  const size_t begin = script.find("CONFIG_YAML = (");
  const size_t end = script.find("\n)\n", begin);
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  write_file(dir + "/extract.py", script.substr(begin, end + 3 - begin) + "open('" + dir +
                                      "/config.yaml', 'w').write(CONFIG_YAML)\n");
  const Result r = sh("/usr/bin/python3 " + dir + "/extract.py");
  ASSERT_EQ(r.status, 0) << r.output;
  expect_same_config(read_file(dir + "/config.yaml"), "ray");
}

// ------------------------------------------------------------------------------ lathe job

TEST(JobCli, WritesTheJobFileWithOverridesApplied) {
  const std::string dir = testing::temp_dir("job_cli");
  const std::string bin = std::string(LATHE_BINARY);
  const std::string config = std::string(LATHE_SOURCE_DIR) + "/configs/quickstart.yaml";
  Result r = sh(bin + " job slurm " + config + " train.lr=1e-5 --nodes 2 --procs-per-node 3 -o " +
                dir + "/job.sbatch");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r.output, "submit: sbatch " + dir + "/job.sbatch")) << r.output;
  const std::string script = read_file(dir + "/job.sbatch");
  EXPECT_TRUE(has_line(script, "#SBATCH --job-name=quickstart"));  // from output.dir
  EXPECT_TRUE(has_line(script, "#SBATCH --ntasks-per-node=3"));
  EXPECT_TRUE(has(script, "lr: 1e-05")) << script;

  r = sh(bin + " job k8s " + config + " --gpus-per-node 4 --image img:1 --name ft-1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(YAML::LoadAll(r.output)[1]["spec"]["slotsPerWorker"].as<int>(), 4);

  // Overrides are checked now, not on the cluster.
  r = sh(bin + " job ray " + config + " train.lrr=1e-5");
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(has(r.output, "train.lrr")) << r.output;
  r = sh(bin + " job k8s " + config);
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(has(r.output, "--image is required")) << r.output;
  r = sh(bin + " job slurm " + config + " --gpus-per-node 2 --procs-per-node 2");
  EXPECT_NE(r.status, 0);
  r = sh(bin + " job slurm " + config + " --name Bad_Name");
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(has(r.output, "bad-name")) << r.output;
}

}  // namespace
}  // namespace lathe
