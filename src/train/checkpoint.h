// Training checkpoints: everything needed to continue exactly (fp32 weights, AdamW
// moments, step, data position, seed). Layout of <output.dir>/checkpoints/step_00000010/:
//   state.safetensors    "params", "adam.m", "adam.v": flat fp32 buffers (ParamTable order)
//                        (data parallel: state-rank00000-of-00004.safetensors ..., each
//                        holding one process's range, listed under "shards" below)
//   trainer_state.json   step, sampler position, seed, parameter count, model config
// A checkpoint is written into step_XXXXXXXX.tmp/ and renamed when complete, so a
// crash mid-save leaves only an ignorable .tmp folder and the previous checkpoint intact.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/sampler.h"

namespace lathe {

struct CheckpointState {
  int64_t step = 0;  // optimizer steps completed
  SamplerState sampler;
  uint64_t seed = 0;
  uint64_t num_params = 0;
  std::string model_config_json;
};

class Backend;
struct CheckpointBuffers {
  const float* params;
  const float* adam_m;
  const float* adam_v;
  size_t n;
  // Null: the buffers are host memory. Otherwise they are this backend's memory, and the
  // save streams them to the file through a bounded host buffer (io/staged_tensor.h):
  // 64 MiB of host memory instead of a host copy of all three (3 × 4 bytes a parameter).
  Backend* backend;
};

// Writes the checkpoint for state.step; returns its folder. Removes older checkpoints
// beyond keep_last, except the folder `protect` (output.keep_best's best checkpoint).
std::string checkpoint_save(const std::string& output_dir, const CheckpointState& state,
                            const CheckpointBuffers& buffers, int64_t keep_last,
                            const std::string& protect = "");

// The complete checkpoints under output_dir (those whose trainer_state.json exists), oldest
// first. Complete means written to the end, not necessarily undamaged since.
struct CheckpointEntry {
  std::string path;
  int64_t step = 0;
};
std::vector<CheckpointEntry> checkpoint_list(const std::string& output_dir);

// The newest complete checkpoint under output_dir, if any.
std::optional<std::string> checkpoint_latest(const std::string& output_dir);

// What is wrong with a checkpoint folder, naming the file ("" when every file reads back
// whole: the manifest parses and each listed shard's header fits its file).
std::string checkpoint_problem(const std::string& folder);

// Reads a checkpoint into the given buffers (n floats each); checks the parameter count.
CheckpointState checkpoint_load(const std::string& folder, float* params, float* adam_m,
                                float* adam_v, size_t n);

// Data parallel: every process writes its own range [begin, begin + count) of the
// parameters and AdamW state, in parallel, to state-rank{r}-of-{N}.safetensors; after a
// barrier process 0 writes trainer_state.json, listing the shards, and only then renames
// the folder into place, so a save cut short anywhere leaves the previous checkpoint as
// the newest. params, adam_m and adam_v point at the range's first element.
class Communicator;
std::string checkpoint_save_sharded(const std::string& output_dir, const CheckpointState& state,
                                    const float* params, const float* adam_m, const float* adam_v,
                                    size_t n, size_t begin, size_t count, Communicator& comm,
                                    int64_t keep_last, const std::string& protect = "",
                                    int shard_index = -2, int shard_count = 0);
// shard_index / shard_count: this process's file among the writers (default: its rank of
// comm.size()); -1: this process writes nothing (a replica of another's range).

// Reads any checkpoint, whole or sharded by any number of processes: all n parameters,
// and the AdamW state of [begin, begin + count) (the reader's own range).
// params_in_range: params also holds only the range (full_shard), not all n.
// With null buffers it only checks the files (n = 0: take the count from the manifest).
CheckpointState checkpoint_load_range(const std::string& folder, float* params, float* adam_m,
                                      float* adam_v, size_t n, size_t begin, size_t count,
                                      bool params_in_range = false);

}  // namespace lathe
