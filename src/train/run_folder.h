// A run folder (output.dir) holds one run. A fresh run refuses a folder that already holds
// one, unless output.overwrite clears it; a resumed run continues the run in the folder from
// the checkpoint train.resume names, and first cuts the run's logs and later checkpoints back
// to that checkpoint's step, so every step is logged once and no checkpoint of the abandoned
// continuation can be resumed later by mistake.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lathe {

// What in `dir` belongs to a run lathe wrote, one description per item ("checkpoints
// step_00000002, step_00000004", "final/", "metrics.jsonl (4 steps)"); empty when none.
std::vector<std::string> run_folder_contents(const std::string& dir);

// Before a fresh run: throws when `dir` holds a run, naming what is there and the two ways
// on (train.resume=true, output.overwrite=true); with overwrite, deletes that run's files
// (and only lathe's: other files in the folder stay).
void claim_run_folder(const std::string& dir, bool overwrite);

// The checkpoint train.resume names: "true" the newest in dir, a step number that step's
// checkpoint in dir, anything else a checkpoint folder. nullopt: "true" and dir has no
// checkpoint yet (the run starts at step 0). A damaged checkpoint stops with an error that
// names its bad file and the newest valid checkpoint to resume from instead.
std::optional<std::string> resolve_resume(const std::string& dir, const std::string& resume);

// Whether `checkpoint` is one of dir's own checkpoints (not one copied in from elsewhere).
bool checkpoint_in(const std::string& dir, const std::string& checkpoint);

// Cuts the run in dir back to `step` (0: before the first step): metrics.jsonl keeps only
// the lines of steps up to it, and checkpoints after it are deleted (best.json with them).
// Returns what it removed, for the log.
std::vector<std::string> rewind_run_folder(const std::string& dir, int64_t step);

}  // namespace lathe
