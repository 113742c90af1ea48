// Reading a run folder (output.dir) while it is written, for the dashboard: the new lines of
// metrics.jsonl since the last read, the run's progress and ETA, its resolved config, and
// the eval samples in samples/*.jsonl. Reads only: a running run, a finished one and a copy
// synced from another machine are all read the same way.
#pragma once
#include <cstdint>
#include <string>

#include "core/json.h"

namespace lathe {

// The complete lines of metrics.jsonl from byte `offset` on. A reader keeps `offset` and
// `head` from the last answer and sends them back; a file that was cut back (a resume
// rewinds the log to its checkpoint) or replaced by another run is read from its start
// again, with `reset` set, so the reader drops what it had.
struct MetricsChunk {
  int64_t offset = 0;  // where the next read starts: just after the last complete line
  std::string head;    // fingerprint of the file's first line
  bool reset = false;  // rows start from the file's beginning
  bool more = false;   // stopped at max_bytes: read again at once for the rest
  nlohmann::json rows = nlohmann::json::array();  // one object a line; malformed lines skipped
};
MetricsChunk read_metrics(const std::string& path, int64_t offset, const std::string& head,
                          size_t max_bytes);

// Where a run stands, from the tail of its metrics.jsonl, its config.yaml and final/.
struct RunStatus {
  int64_t step = 0;             // newest training step logged
  int64_t total = 0;            // steps the run will take; 0 = unknown
  double seconds_per_step = 0;  // over the newest steps, evals and checkpoints included
  double eta_s = -1;            // -1 = unknown (no rate yet, no total, or not training)
  double updated_s_ago = -1;    // since metrics.jsonl last changed; -1 = no log yet
  int64_t config_mtime_ns = 0;  // changes when a resume rewrites config.yaml
  std::string state;            // "starting", "training", "idle", "finished"
};
// `total_steps` > 0 overrides config.yaml's train.max_steps (the trainer knows the total
// that max_steps=0 derives from the data; a folder alone does not).
RunStatus run_status(const std::string& dir, int64_t total_steps = 0);
nlohmann::json to_json(const RunStatus& s);

// config.yaml's scalars and lists by dotted key ("train.lr" -> "3e-4"), as written.
nlohmann::json flatten_config(const std::string& yaml_text);

// samples/*.jsonl in the run folder (`lathe eval --samples RUN/samples/NAME.jsonl`), by
// name: [{"file", "count", "rows": [first max_rows rows]}].
nlohmann::json read_samples(const std::string& dir, size_t max_rows);

// The whole of a small text file ("" when absent).
std::string read_text_file(const std::string& path);

}  // namespace lathe
