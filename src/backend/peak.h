// The matrix-product peak MFU is measured against: the best dense product this backend
// runs, measured on this machine, kept per machine in the user's cache folder.
#pragma once
#include <string>

#include "backend/backend.h"

namespace lathe {

// GFLOP/s of the square-ish products that dominate Llama training, in the given
// precision ("fp32", or "bf16": bf16 operands, on bf16 kernels where the backend has
// them): the best of at least kPeakMinReps runs and kPeakMinSeconds, after a warm-up.
double measure_matmul_peak_gflops(Backend& be, const std::string& precision);
// The product it times: [kPeakM, kPeakK] by [kPeakK, kPeakN].
constexpr int64_t kPeakM = 1024, kPeakN = 4096, kPeakK = 1024;

struct MatmulPeak {
  double gflops = 0;
  std::string kernels;           // e.g. "cpu fp32 kernels (oneDNN avx2)"
  std::string path;              // the cache file
  bool measured = false;         // measured by this call (else read from the cache)
  double measured_gflops = 0;    // what this call measured, when it did
  std::string describe() const;  // for start-up lines: value, kernels, where it came from
};

// The cached peak ($XDG_CACHE_HOME/lathe or ~/.cache/lathe, per machine, backend,
// kernels and threads), measured when absent or when remeasure is set. A cached value is
// never lowered: a measurement taken while something else loaded the machine must not
// make later MFU figures look better than they are.
MatmulPeak matmul_peak(Backend& be, const std::string& precision, bool remeasure);

// A step ran at `achieved_gflops` (model FLOPs per second), above `peak`: the peak was
// measured low. Re-measures, keeps the largest of the cached, re-measured and achieved
// rates, saves it, and returns it, so MFU = achieved / peak never exceeds 1.
MatmulPeak raise_matmul_peak(Backend& be, const std::string& precision, const MatmulPeak& peak,
                             double achieved_gflops);

std::string matmul_peak_cache_path(const Backend& be, const std::string& precision);

}  // namespace lathe
