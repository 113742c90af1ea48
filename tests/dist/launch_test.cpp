// lathe launch: the mpirun command line it builds, --dry-run through the binary, and real
// runs of N copies of lathe under mpirun (more processes than this machine has cores).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/cpu_isa.h"
#include "dist/job_files.h"
#include "model/golden.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

struct Result {
  int status;
  std::string out, err;
};

// Runs the lathe binary with `args` (a shell fragment); stdout and stderr apart.
Result run_lathe(const std::string& args, const std::string& env = "") {
  const std::string err_file =
      (fs::temp_directory_path() / ("lathe_launch_err_" + std::to_string(getpid()))).string();
  const std::string cmd = "env -u OMP_NUM_THREADS " + env + " " + std::string(LATHE_BINARY) + " " +
                          args + " 2>" + err_file;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = pclose(p);
  std::string err;
  if (FILE* f = fopen(err_file.c_str(), "r")) {
    while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) err.append(buf.data(), n);
    fclose(f);
  }
  fs::remove(err_file);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out, err};
}

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

bool have_mpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

TEST(LaunchCommand, MpirunArgv) {
  LaunchSpec spec;
  spec.nproc = 4;
  spec.mpirun = "/usr/bin/mpirun";
  spec.binary = "/opt/lathe/bin/lathe";
  spec.args = {"train", "x.yaml", "train.lr=1e-5"};
  spec.local_cores = 8;
  spec.omp_threads = 2;
  EXPECT_EQ(mpirun_argv(spec),
            (std::vector<std::string>{"/usr/bin/mpirun", "-np", "4", "--bind-to", "none", "-x",
                                      "OMP_NUM_THREADS=2", "/opt/lathe/bin/lathe", "train",
                                      "x.yaml", "train.lr=1e-5"}));
  // More processes than cores, as root.
  spec.local_cores = 2;
  spec.as_root = true;
  spec.omp_threads = 0;
  EXPECT_EQ(mpirun_argv(spec),
            (std::vector<std::string>{"/usr/bin/mpirun", "-np", "4", "--bind-to", "none",
                                      "--oversubscribe", "--allow-run-as-root",
                                      "/opt/lathe/bin/lathe", "train", "x.yaml", "train.lr=1e-5"}));
  // A hostfile decides the slots; OMP_NUM_THREADS from the environment is passed on.
  spec.hostfile = "hosts";
  spec.as_root = false;
  spec.forward_omp_threads = true;
  EXPECT_EQ(mpirun_argv(spec),
            (std::vector<std::string>{"/usr/bin/mpirun", "-np", "4", "--hostfile", "hosts",
                                      "--bind-to", "none", "-x", "OMP_NUM_THREADS",
                                      "/opt/lathe/bin/lathe", "train", "x.yaml", "train.lr=1e-5"}));
  spec.args.clear();
  EXPECT_ANY_THROW(mpirun_argv(spec));
  EXPECT_EQ(shell_join({"a", "b c", "it's", ""}), "a 'b c' 'it'\\''s' ''");
}

TEST(LaunchCli, DryRunPrintsTheMpirunCommand) {
  const Result r = run_lathe("launch --dry-run --nproc 4 -- train x.yaml");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string binary = fs::canonical(LATHE_BINARY).string();
  EXPECT_NE(r.out.find("mpirun -np 4 --bind-to none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" " + binary + " train x.yaml\n"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.out, "\n"), 1u) << r.out;
  const bool root = geteuid() == 0 && std::getenv("OMPI_ALLOW_RUN_AS_ROOT") == nullptr;
  EXPECT_EQ(r.out.find("--allow-run-as-root") != std::string::npos, root) << r.out;
  EXPECT_NE(r.out.find(" -x OMP_NUM_THREADS="), std::string::npos) << r.out;
  std::printf("%s", r.out.c_str());
}

TEST(LaunchCli, DryRunWithHostfile) {
  const std::string hosts = (fs::temp_directory_path() / "lathe_launch_hosts").string();
  std::FILE* f = std::fopen(hosts.c_str(), "w");
  std::fputs("node1 slots=8\nnode2 slots=8\n", f);
  std::fclose(f);
  const Result r = run_lathe("launch --dry-run --nproc 16 --hostfile " + hosts +
                             " -- train my.yaml dist.strategy=full_shard");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("mpirun -np 16 --hostfile " + hosts + " --bind-to none"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("--oversubscribe"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" train my.yaml dist.strategy=full_shard\n"), std::string::npos);
}

TEST(LaunchCli, MissingMpirunIsAClearError) {
  Result r = run_lathe("launch --nproc 2 -- tokenize --model m x", "PATH=/nonexistent");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("mpirun not found on PATH: install openmpi-bin (scripts/setup.sh does)"),
            std::string::npos)
      << r.err;
  r = run_lathe("launch --mpirun /nonexistent/mpirun --nproc 2 -- tokenize --model m x");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("install openmpi-bin"), std::string::npos) << r.err;
  r = run_lathe("launch --nproc 2");
  EXPECT_NE(r.status, 0);
}

TEST(LaunchCli, RunsCopiesOfLatheUnderMpirun) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed (openmpi-bin)";
  // More processes than most test machines have cores: --oversubscribe must be added.
  const std::string model = std::string(LATHE_SOURCE_DIR) + "/examples/stories260K";
  const Result r = run_lathe("launch --nproc 4 -- tokenize --model " + model + " hello");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(count(r.out, "decoded: <s> hello\n"), 4u) << r.out;
}

TEST(LaunchCli, ExitStatusIsPassedThrough) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed (openmpi-bin)";
  const Result r = run_lathe("launch --nproc 2 -- tokenize --model /nonexistent/model hello");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("/nonexistent/model"), std::string::npos) << r.err;
}

// 2 processes each asking for as many threads as the machine has cores: the first rank says
// so and caps them at the fair share (oversubscribed, a step ran 2.35x slower).
TEST(LaunchCli, ThreadsAboveTheCoresAreCappedWithAWarning) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed (openmpi-bin)";
  const int cores = usable_cpu_count();
  const std::string golden = testing::golden_dir("gqa_untied");
  const std::string dir = testing::temp_dir("launch_threads");
  const Result r = run_lathe(
      "launch --nproc 2 -- train /dev/null model.path=" + golden + "/model data.train=" + golden +
      "/train/data.jsonl data.seq_len=24 train.batch_size=2 train.max_steps=1 "
      "train.precision=fp32 train.threads=" + std::to_string(cores) + " output.dir=" + dir);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const std::string want = "warning: train.threads=" + std::to_string(cores) +
                           " x 2 processes on this machine = " + std::to_string(2 * cores) +
                           " threads on " + std::to_string(cores) + " cores; using " +
                           std::to_string(std::max(1, cores / 2)) + " thread";
  EXPECT_EQ(count(r.err, want), 1u) << r.err;
}

}  // namespace
}  // namespace lathe
