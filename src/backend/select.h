// One place that turns a device name into a backend, for every verb: "cpu", "cuda" or
// "auto" (CUDA when this binary was built with it and a GPU is visible, else the CPU).
#pragma once
#include <memory>
#include <string>

#include "backend/backend.h"

namespace lathe {

// The names make_backend accepts, for messages and config checks.
inline constexpr const char* kDeviceNames = "cpu, cuda or auto";
bool is_device_name(const std::string& device);

// "cpu" or "cuda": what `device` means on this build and machine. Fails with what to do
// for "cuda" where it cannot run (a build without CUDA, no visible GPU) and for unknown
// names.
std::string resolve_device(const std::string& device);

// The GPU of this process among `count` visible ones: its local rank (LOCAL_RANK,
// OMPI_COMM_WORLD_LOCAL_RANK or SLURM_LOCALID, the first that is set) modulo count, so
// the processes of one machine spread over its GPUs; 0 without a launcher.
int local_device_index(int count);

// threads: CPU threads (0 = all cores); bf16_kernels as in make_cpu_backend.
std::unique_ptr<Backend> make_backend(const std::string& device, int threads,
                                      bool bf16_kernels = true);

}  // namespace lathe
