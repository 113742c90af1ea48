// Seconds since the epoch: metrics.jsonl's "time" and TensorBoard's wall_time, which
// must agree so that a rebuilt event file keeps the times of the run it replays.
#pragma once
#include <chrono>

namespace lathe {

inline double wall_clock_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace lathe
