// lathe launch --nproc N [--hostfile FILE] [--mpirun PATH] [--dry-run] -- <lathe args...>
// Starts N copies of this lathe under mpirun (data-parallel training over processes).
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli/verbs.h"
#include "core/error.h"
#include "dist/job_files.h"

namespace lathe::cli {
namespace {

namespace fs = std::filesystem;

bool executable(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && access(path.c_str(), X_OK) == 0;
}

// `name` on PATH, or "" when it is not there.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (executable(candidate)) return candidate;
  }
  return "";
}

// CPUs this process may run on (its affinity mask), and how many physical cores they
// belong to: Open MPI gives a machine one slot per core.
std::pair<int64_t, int64_t> local_cpus_and_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return {n > 0 ? n : 1, n > 0 ? n : 1};
  }
  int64_t cpus = 0;
  std::set<std::pair<std::string, std::string>> cores;
  bool topology = true;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    ++cpus;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::string package, core;
    std::ifstream(dir + "physical_package_id") >> package;
    std::ifstream(dir + "core_id") >> core;
    if (package.empty() || core.empty()) topology = false;
    cores.emplace(package, core);
  }
  if (cpus == 0) cpus = 1;
  return {cpus, topology ? int64_t(cores.size()) : cpus};
}

struct LaunchOptions {
  int64_t nproc = 0;
  std::string hostfile, mpirun;
  bool dry_run = false;
  std::vector<std::string> args;
};

int run_launch(const LaunchOptions& o) {
  LaunchSpec spec;
  spec.nproc = o.nproc;
  spec.hostfile = o.hostfile;
  spec.args = o.args;
  std::error_code ec;
  spec.binary = fs::read_symlink("/proc/self/exe", ec).string();
  LATHE_CHECK(!ec, "cannot find this lathe binary through /proc/self/exe: ", ec.message());

  std::string mpirun = o.mpirun;
  if (mpirun.empty()) {
    mpirun = find_on_path("mpirun");
    if (mpirun.empty() && o.dry_run) {
      std::fprintf(stderr, "note: mpirun is not on PATH; install openmpi-bin to run this\n");
      mpirun = "mpirun";
    }
    LATHE_CHECK(!mpirun.empty(),
                "mpirun not found on PATH: install openmpi-bin (scripts/setup.sh does), or pass "
                "--mpirun PATH");
  } else if (mpirun.find('/') == std::string::npos) {
    const std::string found = find_on_path(mpirun);
    LATHE_CHECK(!found.empty() || o.dry_run, "--mpirun ", mpirun,
                ": not found on PATH; install openmpi-bin (scripts/setup.sh does)");
    if (!found.empty()) mpirun = found;
  } else {
    LATHE_CHECK(executable(mpirun) || o.dry_run, "--mpirun ", mpirun,
                ": no executable file there; install openmpi-bin (scripts/setup.sh does)");
  }
  spec.mpirun = mpirun;

  // Open MPI refuses to run as root unless asked to (containers commonly run as root).
  spec.as_root = geteuid() == 0 && std::getenv("OMPI_ALLOW_RUN_AS_ROOT") == nullptr;
  const auto [cpus, cores] = local_cpus_and_cores();
  spec.local_cores = cores;
  // Each process runs OpenMP threads on every CPU it sees unless told otherwise; N
  // processes on one machine share its CPUs. Other machines (hostfile) differ: there an
  // OMP_NUM_THREADS set here is passed on, as Open MPI does not forward it by itself.
  const bool omp_set = std::getenv("OMP_NUM_THREADS") != nullptr;
  if (o.hostfile.empty() && !omp_set) spec.omp_threads = std::max<int64_t>(1, cpus / o.nproc);
  spec.forward_omp_threads = !o.hostfile.empty() && omp_set;

  const std::vector<std::string> argv = mpirun_argv(spec);
  if (o.dry_run) {
    std::printf("%s\n", shell_join(argv).c_str());
    return 0;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  // mpirun replaces this process: its exit status and signals are the job's.
  execv(spec.mpirun.c_str(), cargv.data());
  fail("cannot run ", spec.mpirun, ": ", std::strerror(errno),
       "; install openmpi-bin (scripts/setup.sh does), or pass --mpirun PATH");
}

}  // namespace

Action add_launch(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("launch",
                         "Run lathe on N processes with mpirun (data-parallel training), e.g. "
                         "lathe launch --nproc 4 -- train my.yaml");
  auto o = std::make_shared<LaunchOptions>();
  cmd->add_option("--nproc,-n", o->nproc, "number of processes")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--hostfile", o->hostfile,
                  "Open MPI hostfile: one line per machine, 'host slots=N' (default: this "
                  "machine only)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--mpirun", o->mpirun, "the mpirun to use (default: mpirun on PATH)");
  cmd->add_flag("--dry-run", o->dry_run, "print the mpirun command instead of running it");
  cmd->add_option("args", o->args, "lathe's arguments, after --: train my.yaml key=value ...")
      ->required();
  cmd->footer(
      "Runs: mpirun -np N [--hostfile FILE] --bind-to none <this lathe> <args>, adding "
      "--oversubscribe when N exceeds this machine's cores, --allow-run-as-root as root, and "
      "-x OMP_NUM_THREADS=<cpus/N> on one machine unless OMP_NUM_THREADS is set. The exit "
      "status is mpirun's. See docs/distributed.md.");
  return [o]() { return run_launch(*o); };
}

}  // namespace lathe::cli
