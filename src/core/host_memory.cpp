#include "core/host_memory.h"

#include <sys/resource.h>

#include <fstream>
#include <sstream>

namespace lathe {
namespace {

// The first number in a file ("max" and missing files: nullopt).
std::optional<double> read_number(const std::string& path) {
  std::ifstream f(path);
  double v = 0;
  if (f >> v) return v;
  return std::nullopt;
}

// A /proc/<...> "Key:   1234 kB" line's value in bytes.
std::optional<double> proc_kb(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream in(line.substr(key.size() + 1));
    double kb = 0;
    if (in >> kb) return kb * 1024;
  }
  return std::nullopt;
}

// This process's cgroup v2 folder ("0::/path" in /proc/self/cgroup).
std::string cgroup_v2_dir() {
  std::ifstream f("/proc/self/cgroup");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("0::", 0) == 0) return "/sys/fs/cgroup" + line.substr(3);
  return "";
}

}  // namespace

MemoryLimit machine_memory_available() {
  MemoryLimit out{proc_kb("/proc/meminfo", "MemAvailable").value_or(0),
                  "MemAvailable in /proc/meminfo"};
  auto lower = [&](std::optional<double> limit, std::optional<double> used,
                   const std::string& what) {
    // Unset limits read as "max" (v2) or a number near 2^63 (v1).
    if (!limit || !used || *limit > 1e18) return;
    const double left = *limit > *used ? *limit - *used : 0;
    if (out.bytes == 0 || left < out.bytes) out = {left, what};
  };
  if (const std::string dir = cgroup_v2_dir(); !dir.empty())
    lower(read_number(dir + "/memory.max"), read_number(dir + "/memory.current"),
          "the cgroup limit " + dir + "/memory.max less its usage");
  lower(read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
        "the cgroup limit memory.limit_in_bytes less its usage");
  return out;
}

std::optional<MemoryLimit> process_memory_limit() {
  std::optional<MemoryLimit> out;
  auto consider = [&](int resource, const char* key, const char* what) {
    rlimit r{};
    if (::getrlimit(resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return;
    const double used = proc_kb("/proc/self/status", key).value_or(0);
    const double limit = double(r.rlim_cur);
    const double left = limit > used ? limit - used : 0;
    if (!out || left < out->bytes) out = MemoryLimit{left, what};
  };
  consider(RLIMIT_AS, "VmSize", "RLIMIT_AS (ulimit -v) less this process's address space");
  consider(RLIMIT_DATA, "VmData", "RLIMIT_DATA (ulimit -d) less this process's data");
  return out;
}

}  // namespace lathe
