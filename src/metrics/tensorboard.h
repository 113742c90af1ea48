// TensorBoard event files: the scalars of metrics.jsonl as `events.out.tfevents.*` records
// (protobuf Event messages in TFRecord framing), which TensorBoard charts.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

#include "core/json.h"

namespace lathe {

// CRC-32C (Castagnoli), as TFRecord frames its records. Debian 12 ships no C or C++
// CRC-32C library outside Boost's headers, so it is computed here (checked against the
// RFC 3720 vectors).
uint32_t crc32c(const void* data, size_t n);

class TensorBoardWriter {
 public:
  // Starts a new events file in `dir` (created if needed).
  explicit TensorBoardWriter(const std::string& dir);
  // Every number of a metrics.jsonl line except "step" and "time", tagged by its key, at
  // the line's step and time.
  void log(const nlohmann::json& line);
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& bytes);
  std::string path_;
  std::ofstream out_;
};

// Rebuilds <dir>/tensorboard from <dir>/metrics.jsonl: after a resume has cut the log back
// to its checkpoint, the charts hold each step once. Returns the writer for the new steps.
TensorBoardWriter rebuild_tensorboard(const std::string& run_dir);

}  // namespace lathe
