#include "backend/select.h"

#include <cstdlib>

#include "core/error.h"

namespace lathe {

bool is_device_name(const std::string& device) {
  return device == "cpu" || device == "cuda" || device == "auto";
}

std::string resolve_device(const std::string& device) {
  LATHE_CHECK(is_device_name(device), "unknown device '", device, "': use ", kDeviceNames);
  if (device == "cpu") return "cpu";
#ifdef LATHE_HAVE_CUDA
  const int gpus = cuda_device_count();
  if (gpus > 0) return "cuda";
  LATHE_CHECK(device == "auto",
              "device 'cuda': no GPU is visible to this process (check "
              "nvidia-smi, the driver and CUDA_VISIBLE_DEVICES), or use device cpu");
#else
  LATHE_CHECK(device == "auto",
              "device 'cuda': this lathe was built without CUDA; rebuild it "
              "with cmake -DLATHE_CUDA=ON (needs the CUDA toolkit), or use device cpu");
#endif
  return "cpu";
}

int local_device_index(int count) {
  if (count <= 0) return 0;
  for (const char* var : {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}) {
    const char* v = std::getenv(var);
    if (!v || !*v) continue;
    char* end = nullptr;
    const long r = std::strtol(v, &end, 10);
    LATHE_CHECK(*end == '\0' && r >= 0, var, "='", v, "' is not a local rank (0, 1, ...)");
    return int(r % count);
  }
  return 0;
}

std::unique_ptr<Backend> make_backend(const std::string& device, int threads, bool bf16_kernels) {
  if (resolve_device(device) == "cpu") return make_cpu_backend(threads, bf16_kernels);
#ifdef LATHE_HAVE_CUDA
  return make_cuda_backend(local_device_index(cuda_device_count()));
#else
  fail("unreachable: resolve_device gave cuda on a build without CUDA");
#endif
}

}  // namespace lathe
