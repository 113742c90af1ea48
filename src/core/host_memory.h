// How much memory a run may still take: the machine's (MemAvailable, lowered by a cgroup
// limit such as a container's or a Slurm job's) and this process's own (ulimit -v, -d).
// The trainer compares its memory plan with these before loading anything.
#pragma once
#include <optional>
#include <string>

namespace lathe {

struct MemoryLimit {
  double bytes = 0;
  std::string source;  // what the figure is, for messages: "MemAvailable in /proc/meminfo"
};

// The smaller of MemAvailable and the cgroup's limit minus its usage (v2 or v1).
MemoryLimit machine_memory_available();

// The smaller of RLIMIT_AS and RLIMIT_DATA minus what this process already uses of it;
// nullopt when both are unlimited.
std::optional<MemoryLimit> process_memory_limit();

}  // namespace lathe
