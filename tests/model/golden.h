// Access to the PyTorch reference's golden files (written by tests/reference/llama_ref.py
// into the build tree by the reference.generate test fixture).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/batch.h"
#include "io/safetensors.h"
#include "train/config.h"

namespace lathe::testing {

// $LATHE_GOLDEN_DIR, where set, replaces the build tree's folder: the GPU check runs the
// tests from a bundle on another machine, with the goldens beside it (gpu_check.sh).
inline std::string golden_dir(const std::string& name) {
  const char* env = std::getenv("LATHE_GOLDEN_DIR");
  return std::string(env && *env ? env : LATHE_GOLDEN_DIR) + "/" + name;
}

inline const std::vector<std::string>& golden_cases() {
  static const std::vector<std::string> cases = {"gqa_untied", "mha_tied", "llama3_rope"};
  return cases;
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

// max |a - b| / max |b|: the per-tensor relative error used throughout (llm.c style).
inline double rel_error(const float* a, const float* b, size_t n) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, double(std::fabs(a[i] - b[i])));
    ref = std::max(ref, double(std::fabs(b[i])));
  }
  return ref > 0 ? diff / ref : diff;
}

inline Batch golden_batch(const SafetensorsFile& f) {
  const TensorInfo* ids = f.find("input_ids");
  const TensorInfo* tg = f.find("targets");
  Batch b;
  b.B = ids->shape[0];
  b.T = ids->shape[1];
  const float* pi = static_cast<const float*>(ids->data);
  const float* pt = static_cast<const float*>(tg->data);
  for (int64_t i = 0; i < b.B * b.T; ++i) {
    b.input_ids.push_back(int32_t(pi[i]));
    b.targets.push_back(int32_t(pt[i]));
  }
  return b;
}

// The training settings the reference used, as a lathe Config.
inline Config golden_train_config(const std::string& case_dir, const std::string& out_dir) {
  const nlohmann::json t = read_json(case_dir + "/train/expected.json").at("train");
  Config c;
  c.model.path = case_dir + "/model";
  c.data.train = case_dir + "/train/data.jsonl";
  c.data.seq_len = t.at("seq_len");
  c.data.shuffle = t.at("shuffle");
  c.train.precision = "fp32";
  c.train.batch_size = t.at("batch_size");
  c.train.grad_accum = t.at("grad_accum");
  c.train.lr = t.at("lr");
  c.train.weight_decay = t.at("weight_decay");
  c.train.betas = {t.at("beta1").get<double>(), t.at("beta2").get<double>()};
  c.train.eps = t.at("eps");
  c.train.schedule = t.at("schedule");
  c.train.warmup_steps = t.at("warmup_steps");
  c.train.max_steps = t.at("max_steps");
  c.train.grad_clip = t.at("grad_clip");
  c.train.threads = 2;
  c.train.device = "cpu";  // the CPU is the reference, whatever a CUDA build finds
  c.output.dir = out_dir;
  return c;
}

inline std::string temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("lathe_test_" + name);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

}  // namespace lathe::testing
