#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "core/json_number.h"
#include "dist/communicator.h"
#include "io/safetensors.h"
#include "io/staged_tensor.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kTensorsFile = "state.safetensors";

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

nlohmann::json manifest(const CheckpointState& state) {
  nlohmann::json j;
  j["format_version"] = 1;
  j["step"] = state.step;
  j["sampler"] = {{"epoch", state.sampler.epoch}, {"offset", state.sampler.offset}};
  j["seed"] = state.seed;
  j["num_params"] = state.num_params;
  j["model_config"] = nlohmann::json::parse(state.model_config_json);
  return j;
}

// Moves a complete tmp folder into place and keeps the newest keep_last (and `protect`).
std::string publish(const fs::path& root, const fs::path& tmp_dir, const fs::path& final_dir,
                    int64_t keep_last, const std::string& protect);

std::string shard_file_name(int rank, int world) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "state-rank%05d-of-%05d.safetensors", rank, world);
  return buf;
}

}  // namespace

std::string checkpoint_save(const std::string& output_dir, const CheckpointState& state,
                            const CheckpointBuffers& b, int64_t keep_last,
                            const std::string& protect) {
  const fs::path root = fs::path(output_dir) / "checkpoints";
  fs::create_directories(root);
  const fs::path final_dir = root / step_dir_name(state.step);
  const fs::path tmp_dir = root / (step_dir_name(state.step) + ".tmp");
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir);
  try {
    const std::vector<int64_t> shape{int64_t(b.n)};
    auto tensor = [&](const char* name, const float* p) {
      return b.backend ? staged_tensor(name, DType::F32, shape, *b.backend, p)
                       : TensorToWrite(name, DType::F32, shape, p);
    };
    safetensors_write(
        (tmp_dir / kTensorsFile).string(),
        {tensor("params", b.params), tensor("adam.m", b.adam_m), tensor("adam.v", b.adam_v)},
        {{"format", "lathe-train-state"}});
    write_file_atomic((tmp_dir / kStateFile).string(), manifest(state).dump(2) + "\n");
  } catch (...) {
    fs::remove_all(tmp_dir, ec);
    throw;
  }
  fsync_path(tmp_dir.string());
  return publish(root, tmp_dir, final_dir, keep_last, protect);
}

namespace {
std::string publish(const fs::path& root, const fs::path& tmp_dir, const fs::path& final_dir,
                    int64_t keep_last, const std::string& protect) {
  std::error_code ec;
  fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir);
  fsync_path(root.string());

  // Keep the newest keep_last checkpoints (and the protected one, the best so far).
  std::vector<fs::path> done;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && e.path().extension() != ".tmp" && fs::exists(e.path() / kStateFile) &&
        (protect.empty() || e.path() != fs::path(protect)))
      done.push_back(e.path());
  std::sort(done.begin(), done.end());
  for (size_t i = 0; i + size_t(keep_last) < done.size(); ++i) fs::remove_all(done[i], ec);
  return final_dir.string();
}

}  // namespace

std::string checkpoint_save_sharded(const std::string& output_dir, const CheckpointState& state,
                                    const float* params, const float* adam_m, const float* adam_v,
                                    size_t n, size_t begin, size_t count, Communicator& comm,
                                    int64_t keep_last, const std::string& protect, int shard_index,
                                    int shard_count) {
  if (shard_index == -2) shard_index = comm.rank(), shard_count = comm.size();
  const fs::path root = fs::path(output_dir) / "checkpoints";
  const fs::path final_dir = root / step_dir_name(state.step);
  const fs::path tmp_dir = root / (step_dir_name(state.step) + ".tmp");
  std::error_code ec;
  if (comm.rank() == 0) {
    fs::create_directories(root);
    fs::remove_all(tmp_dir, ec);
    fs::create_directories(tmp_dir);
  }
  comm.barrier();
  const std::vector<int64_t> shape{int64_t(count)};
  if (shard_index >= 0) {
    safetensors_write((tmp_dir / shard_file_name(shard_index, shard_count)).string(),
                      {{"params", DType::F32, shape, params},
                       {"adam.m", DType::F32, shape, adam_m},
                       {"adam.v", DType::F32, shape, adam_v}},
                      {{"format", "lathe-train-state"},
                       {"offset", std::to_string(begin)},
                       {"count", std::to_string(count)},
                       {"num_params", std::to_string(n)}});
  }
  // Every shard is on disk (each write fsyncs) before the manifest exists.
  comm.barrier();
  if (comm.rank() != 0) return "";
  nlohmann::json j = manifest(state);
  j["shards"] = nlohmann::json::array();
  for (int r = 0; r < shard_count; ++r) j["shards"].push_back(shard_file_name(r, shard_count));
  write_file_atomic((tmp_dir / kStateFile).string(), j.dump(2) + "\n");
  fsync_path(tmp_dir.string());
  return publish(root, tmp_dir, final_dir, keep_last, protect);
}

std::vector<CheckpointEntry> checkpoint_list(const std::string& output_dir) {
  const fs::path root = fs::path(output_dir) / "checkpoints";
  std::vector<CheckpointEntry> done;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return done;
  for (const auto& e : fs::directory_iterator(root)) {
    // Exactly step_<digits>: step_00000010.tmp (a save cut short) and anything a user put
    // beside them are not checkpoints.
    const std::string name = e.path().filename().string();
    const std::string digits = name.rfind("step_", 0) == 0 ? name.substr(5) : "";
    if (!e.is_directory() || digits.empty() ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        digits.size() > 18 || !fs::exists(e.path() / kStateFile))  // written last: complete
      continue;
    done.push_back({e.path().string(), std::stoll(digits)});
  }
  std::sort(done.begin(), done.end(),
            [](const CheckpointEntry& a, const CheckpointEntry& b) { return a.step < b.step; });
  return done;
}

std::optional<std::string> checkpoint_latest(const std::string& output_dir) {
  auto all = checkpoint_list(output_dir);
  if (all.empty()) return std::nullopt;
  return all.back().path;
}

std::string checkpoint_problem(const std::string& folder) {
  try {
    checkpoint_load_range(folder, nullptr, nullptr, nullptr, 0, 0, 0);
  } catch (const Error& e) {
    // The safetensors reader's advice for a damaged file, to re-download it, fits model
    // weights; a checkpoint was written here, so the caller says which one to use instead.
    std::string msg = e.what();
    const size_t advice = msg.find("; re-download it");
    return advice == std::string::npos ? msg : msg.substr(0, advice);
  }
  return "";
}

CheckpointState checkpoint_load(const std::string& folder, float* params, float* adam_m,
                                float* adam_v, size_t n) {
  return checkpoint_load_range(folder, params, adam_m, adam_v, n, 0, n);
}

CheckpointState checkpoint_load_range(const std::string& folder, float* params, float* adam_m,
                                      float* adam_v, size_t n, size_t begin, size_t count,
                                      bool params_in_range) {
  const std::string state_path = (fs::path(folder) / kStateFile).string();
  std::ifstream f(state_path);
  LATHE_CHECK(f, "cannot open ", state_path, ": the checkpoint is incomplete");
  nlohmann::json j;
  CheckpointState s;
  std::vector<std::string> files;
  try {
    f >> j;
    s.step = require_json_integer<int64_t>(j.at("step"), "'step'");
    s.sampler.epoch =
        require_json_integer<uint64_t>(j.at("sampler").at("epoch"), "'sampler.epoch'");
    s.sampler.offset =
        require_json_integer<uint64_t>(j.at("sampler").at("offset"), "'sampler.offset'");
    s.seed = require_json_integer<uint64_t>(j.at("seed"), "'seed'");
    s.num_params = require_json_integer<uint64_t>(j.at("num_params"), "'num_params'");
    s.model_config_json = j.at("model_config").dump();
    if (j.contains("shards"))
      for (const auto& x : j.at("shards")) files.push_back(x.get<std::string>());
    else
      files.push_back(kTensorsFile);
  } catch (const std::exception& e) {
    fail(state_path, ": the file is truncated or corrupt (", e.what(), ")");
  }
  for (const std::string& name : files)
    LATHE_CHECK(!name.empty() && name.find('/') == std::string::npos && name != "..", state_path,
                ": shard name '", name, "' is not a file in the checkpoint folder");
  const bool check_only = params == nullptr;
  if (check_only && n == 0) n = s.num_params, count = 0;
  LATHE_CHECK(s.num_params == n, state_path, ": checkpoint has ", s.num_params,
              " parameters but the model has ", n, ": it belongs to a different model");
  // Each file holds [offset, offset + count) of the three buffers: all parameters are
  // read, and of the AdamW state the part that overlaps this reader's range.
  size_t covered = 0;
  for (const std::string& name : files) {
    SafetensorsFile st((fs::path(folder) / name).string());
    const auto meta = st.metadata();
    size_t off = 0;
    if (meta.count("offset")) {
      const std::string& text = meta.at("offset");
      const auto r = std::from_chars(text.data(), text.data() + text.size(), off);
      LATHE_CHECK(r.ec == std::errc() && r.ptr == text.data() + text.size(), st.path(),
                  ": metadata 'offset' is '", text, "', not a number: the file is corrupt");
    }
    const char* names[3] = {"params", "adam.m", "adam.v"};
    const float* src[3] = {};
    size_t len = 0;
    for (int i = 0; i < 3; ++i) {
      const TensorInfo* t = st.find(names[i]);
      LATHE_CHECK(t && t->dtype == DType::F32 && (i == 0 || size_t(t->numel()) == len), st.path(),
                  ": tensor '", names[i], "' missing or of the wrong size");
      if (i == 0) len = size_t(t->numel());
      src[i] = static_cast<const float*>(t->data);
    }
    // Both from the file: compared without forming off + len, which can wrap.
    LATHE_CHECK(off <= n && len <= n - off, st.path(), ": range [", off, ", +", len,
                ") is past the model's ", n, " parameters");
    covered += len;
    if (check_only) continue;
    const size_t lo = std::max(off, begin), hi = std::min(off + len, begin + count);
    if (!params_in_range)
      std::memcpy(params + off, src[0], len * sizeof(float));
    else if (lo < hi)
      std::memcpy(params + (lo - begin), src[0] + (lo - off), (hi - lo) * sizeof(float));
    if (lo < hi) {
      std::memcpy(adam_m + (lo - begin), src[1] + (lo - off), (hi - lo) * sizeof(float));
      std::memcpy(adam_v + (lo - begin), src[2] + (lo - off), (hi - lo) * sizeof(float));
    }
  }
  LATHE_CHECK(covered == n, state_path, ": its shards hold ", covered, " of ", n,
              " parameters: a shard file is missing or damaged");
  return s;
}

}  // namespace lathe
