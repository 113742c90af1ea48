#include "train/run_folder.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "core/json_number.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

// Everything a run writes into its folder. A new per-run output must be added here, or a
// fresh run would keep the old run's copy of it.
constexpr const char* kRunEntries[] = {"checkpoints", "final", "metrics.jsonl", "config.yaml",
                                       "tensorboard"};

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> lines;
  std::ifstream f(p);
  for (std::string line; std::getline(f, line);) lines.push_back(line);
  return lines;
}

// The step a metrics.jsonl line logs; nullopt for a line cut short by a crash.
std::optional<int64_t> line_step(const std::string& line) {
  const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("step")) return std::nullopt;
  return json_integer<int64_t>(j["step"]);
}

std::string list_steps(const std::vector<CheckpointEntry>& all) {
  std::string out;
  for (const CheckpointEntry& c : all) out += (out.empty() ? "" : ", ") + std::to_string(c.step);
  return out.empty() ? "none" : out;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::vector<std::string> run_folder_contents(const std::string& dir) {
  std::vector<std::string> out;
  const auto ckpts = checkpoint_list(dir);
  if (!ckpts.empty()) {
    std::string names;
    for (const CheckpointEntry& c : ckpts)
      names += (names.empty() ? "" : ", ") + fs::path(c.path).filename().string();
    out.push_back("checkpoints/ " + names);
  }
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "final", ec)) out.push_back("final/");
  int64_t steps = 0, last = 0;
  for (const std::string& line : read_lines(fs::path(dir) / "metrics.jsonl"))
    if (auto s = line_step(line); s && line.find("\"loss\"") != std::string::npos)
      ++steps, last = std::max(last, *s);
  if (steps > 0)
    out.push_back(str_cat("metrics.jsonl (", steps, " steps logged, the last step ", last, ")"));
  return out;
}

void claim_run_folder(const std::string& dir, bool overwrite) {
  const std::vector<std::string> found = run_folder_contents(dir);
  if (found.empty()) return;
  std::string what;
  for (const std::string& f : found) what += (what.empty() ? "" : "; ") + f;
  if (!overwrite)
    fail("output.dir ", dir, " already holds a run: ", what,
         ". A fresh run would mix with it. Continue that run with train.resume=true, start over "
         "with output.overwrite=true (deletes that run's files), or choose another output.dir");
  for (const char* name : kRunEntries) {
    std::error_code ec;
    fs::remove_all(fs::path(dir) / name, ec);
    LATHE_CHECK(!ec, "output.overwrite=true: cannot delete ", (fs::path(dir) / name).string(), ": ",
                ec.message());
  }
  std::fprintf(stderr, "output.overwrite=true: deleted the run in %s (%s)\n", dir.c_str(),
               what.c_str());
}

bool checkpoint_in(const std::string& dir, const std::string& checkpoint) {
  std::error_code ec;
  return fs::weakly_canonical(fs::path(checkpoint), ec).parent_path() ==
         fs::weakly_canonical(fs::path(dir) / "checkpoints", ec);
}

std::optional<std::string> resolve_resume(const std::string& dir, const std::string& resume) {
  const auto all = checkpoint_list(dir);
  std::string chosen;
  if (resume == "true") {
    if (all.empty()) return std::nullopt;
    chosen = all.back().path;
  } else if (all_digits(resume)) {
    const int64_t step = std::stoll(resume);
    auto it = std::find_if(all.begin(), all.end(),
                           [&](const CheckpointEntry& c) { return c.step == step; });
    LATHE_CHECK(it != all.end(), "train.resume=", resume, ": ", dir,
                "/checkpoints has no complete checkpoint of step ", step,
                "; its checkpoints are of steps: ", list_steps(all));
    chosen = it->path;
  } else {
    std::error_code ec;
    fs::path p(resume);
    // A bare name such as step_00000010 means the one in this run's checkpoints/.
    if (!fs::exists(p, ec) && fs::exists(fs::path(dir) / "checkpoints" / p, ec))
      p = fs::path(dir) / "checkpoints" / p;
    LATHE_CHECK(fs::is_regular_file(p / "trainer_state.json", ec), "train.resume=", resume, ": ",
                p.string(),
                fs::exists(p, ec) ? " is not a checkpoint folder (it has no trainer_state.json)"
                                  : " does not exist",
                "; give true (the newest checkpoint in output.dir), a step number (one of ",
                list_steps(all), "), or a folder such as ", dir, "/checkpoints/step_00000010");
    chosen = p.string();
  }
  const std::string problem = checkpoint_problem(chosen);
  if (problem.empty()) return chosen;
  // Name the newest checkpoint of this run that reads back whole, older than the bad one.
  const CheckpointEntry* good = nullptr;
  if (checkpoint_in(dir, chosen))
    for (const CheckpointEntry& c : all)
      if (c.path != chosen && fs::weakly_canonical(c.path) != fs::weakly_canonical(chosen) &&
          checkpoint_problem(c.path).empty() && (!good || c.step > good->step))
        good = &c;
  if (good)
    fail("cannot resume from ", chosen, ": ", problem, ". The newest valid checkpoint is ",
         good->path, " (step ", good->step, "): resume from it with train.resume=", good->step,
         " (that deletes the damaged later checkpoints), or restore ", chosen, " from a backup");
  fail("cannot resume from ", chosen, ": ", problem,
       ". No other checkpoint of this run reads back whole: restore it from a backup, or start "
       "over with output.overwrite=true");
}

std::vector<std::string> rewind_run_folder(const std::string& dir, int64_t step) {
  std::vector<std::string> removed;
  const fs::path metrics = fs::path(dir) / "metrics.jsonl";
  std::error_code ec;
  if (fs::exists(metrics, ec)) {
    std::string kept;
    size_t dropped = 0;
    // Step 0 (no checkpoint yet) keeps nothing: the baseline eval at step 0 runs again.
    for (const std::string& line : read_lines(metrics)) {
      const auto s = line_step(line);
      if (step > 0 && s && *s <= step)
        kept += line + "\n";
      else
        ++dropped;
    }
    if (dropped > 0) {
      write_file_atomic(metrics.string(), kept);
      removed.push_back(str_cat(dropped, " lines of metrics.jsonl after step ", step));
    }
  }
  const fs::path best = fs::path(dir) / "checkpoints" / "best.json";
  std::string best_name;
  if (fs::exists(best, ec)) {
    std::ifstream f(best);
    const auto j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_object() && j.contains("checkpoint") && j["checkpoint"].is_string())
      best_name = j["checkpoint"].get<std::string>();
  }
  for (const CheckpointEntry& c : checkpoint_list(dir)) {
    if (c.step <= step) continue;
    fs::remove_all(c.path, ec);
    LATHE_CHECK(!ec, "cannot delete ", c.path, " (a checkpoint after the resumed step ", step,
                "): ", ec.message());
    removed.push_back(c.path);
    if (fs::path(c.path).filename() == best_name) fs::remove(best, ec);
  }
  return removed;
}

}  // namespace lathe
