#include "io/peft_adapter.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "core/json_number.h"
#include "io/folder_write.h"
#include "io/safetensors.h"
#include "io/staged_tensor.h"

namespace fs = std::filesystem;

namespace lathe {

namespace {

// A tensor of the adapter: its name, shape and first element in the flat parameters.
using AdapterTensor =
    std::function<TensorToWrite(const std::string&, const std::vector<int64_t>&, size_t)>;

void write_adapter(const std::string& dir, const LoraTable& table, DType dtype,
                   const std::string& base_model, const AdapterTensor& tensor) {
  write_folder_atomic(dir, [&](const fs::path& tmp) {
    std::vector<TensorToWrite> tensors;
    for (const LoraEntry& e : table.entries) {
      tensors.push_back(tensor(e.a_name(), {table.spec.r, e.in}, e.a_offset));
      tensors.push_back(tensor(e.b_name(), {e.out, table.spec.r}, e.b_offset));
    }
    safetensors_write((tmp / "adapter_model.safetensors").string(), tensors);
    // The keys PEFT's LoraConfig writes, with the values that describe plain LoRA.
    nlohmann::ordered_json c;
    c["alpha_pattern"] = nlohmann::json::object();
    c["auto_mapping"] = nullptr;
    c["base_model_name_or_path"] = base_model;
    c["bias"] = "none";
    c["fan_in_fan_out"] = false;
    c["inference_mode"] = true;
    c["init_lora_weights"] = true;
    c["layers_pattern"] = nullptr;
    c["layers_to_transform"] = nullptr;
    c["lora_alpha"] = table.spec.alpha;
    c["lora_dropout"] = table.spec.dropout;
    c["modules_to_save"] = nullptr;
    c["peft_type"] = "LORA";
    c["r"] = table.spec.r;
    c["rank_pattern"] = nlohmann::json::object();
    c["revision"] = nullptr;
    c["target_modules"] = lora_target_names(table.spec.targets);
    c["task_type"] = "CAUSAL_LM";
    c["use_dora"] = false;
    c["use_rslora"] = false;
    write_file_atomic((tmp / "adapter_config.json").string(), c.dump(2) + "\n");
  });
}

}  // namespace

void save_peft_adapter(const std::string& dir, const LoraTable& table, const float* params,
                       DType dtype, const std::string& base_model) {
  // Converted piece by piece as the file is written, not into a copy of the whole adapter.
  write_adapter(dir, table, dtype, base_model,
                [&](const std::string& name, const std::vector<int64_t>& shape, size_t first) {
                  TensorToWrite t(name, dtype, shape, nullptr);
                  const float* src = params + first;
                  t.fill = [src, dtype](void* dst, size_t offset, size_t bytes) {
                    const size_t es = dtype_size(dtype);
                    convert_from_f32(src + offset / es, dst, dtype, bytes / es);
                  };
                  return t;
                });
}

void save_peft_adapter(const std::string& dir, const LoraTable& table, Backend& be,
                       const float* params, DType dtype, const std::string& base_model) {
  write_adapter(dir, table, dtype, base_model,
                [&](const std::string& name, const std::vector<int64_t>& shape, size_t first) {
                  return staged_tensor(name, dtype, shape, be, params + first);
                });
}

LoraSpec read_peft_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / "adapter_config.json").string();
  std::ifstream f(path);
  LATHE_CHECK(f, "cannot open ", path, ": is ", dir,
              " a PEFT adapter folder (adapter_config.json + "
              "adapter_model.safetensors)?");
  nlohmann::json j;
  try {
    f >> j;
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  auto get = [&](const char* key) -> const nlohmann::json& {
    LATHE_CHECK(j.contains(key) && !j[key].is_null(), path, ": key '", key, "' is missing");
    return j[key];
  };
  const std::string type = get("peft_type").get<std::string>();
  LATHE_CHECK(type == "LORA", path, ": peft_type is '", type, "'; lathe reads LORA adapters");
  auto refuse_if = [&](const char* key, bool on, const char* what) {
    LATHE_CHECK(!on, path, ": '", key, "' asks for ", what, ", which lathe does not implement");
  };
  refuse_if("use_dora", j.value("use_dora", false), "DoRA");
  refuse_if("use_rslora", j.value("use_rslora", false), "rsLoRA scaling");
  refuse_if("bias", j.value("bias", std::string("none")) != "none", "trained biases");
  refuse_if("fan_in_fan_out", j.value("fan_in_fan_out", false), "transposed (Conv1D) weights");
  refuse_if(
      "rank_pattern",
      j.contains("rank_pattern") && j["rank_pattern"].is_object() && !j["rank_pattern"].empty(),
      "per-module ranks");
  refuse_if(
      "alpha_pattern",
      j.contains("alpha_pattern") && j["alpha_pattern"].is_object() && !j["alpha_pattern"].empty(),
      "per-module alphas");
  refuse_if("modules_to_save",
            j.contains("modules_to_save") && !j["modules_to_save"].is_null() &&
                !j["modules_to_save"].empty(),
            "fully trained extra modules");
  refuse_if("layers_to_transform",
            j.contains("layers_to_transform") && !j["layers_to_transform"].is_null(),
            "a subset of layers");
  LoraSpec s;
  try {
    s.r = require_json_integer<int64_t>(get("r"), str_cat(path, ": 'r'"));
    s.alpha = get("lora_alpha").get<double>();
    s.dropout = j.contains("lora_dropout") && !j["lora_dropout"].is_null()
                    ? j["lora_dropout"].get<double>()
                    : 0.0;
    const auto& t = get("target_modules");
    std::vector<std::string> names;
    if (t.is_string()) {
      names.push_back(t.get<std::string>());
    } else {
      for (const auto& x : t) names.push_back(x.get<std::string>());
    }
    s.targets = parse_lora_targets(names);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": ", e.what());
  }
  LATHE_CHECK(s.r >= 1, path, ": r must be >= 1");
  return s;
}

void load_peft_weights(const std::string& dir, const LoraTable& table, float* params) {
  const std::string path = (fs::path(dir) / "adapter_model.safetensors").string();
  SafetensorsFile f(path);
  std::set<std::string> used;
  auto take = [&](const std::string& name, const std::vector<int64_t>& shape, size_t offset) {
    const TensorInfo* t = f.find(name);
    if (!t) {
      // Some PEFT versions keep the adapter name in the key.
      const std::string alt = name.substr(0, name.size() - 7) + ".default.weight";
      t = f.find(alt);
    }
    LATHE_CHECK(t, path, ": tensor '", name,
                "' not found: the adapter does not match the "
                "config's layers or target_modules");
    LATHE_CHECK(t->shape == shape, path, ": tensor '", name, "' has shape [", t->shape[0], ", ",
                t->shape.size() > 1 ? t->shape[1] : 0, "] but the model and r=", table.spec.r,
                " imply [", shape[0], ", ", shape[1], "]");
    convert_to_f32(t->data, t->dtype, params + offset, size_t(t->numel()));
    used.insert(t->name);
  };
  for (const LoraEntry& e : table.entries) {
    take(e.a_name(), {table.spec.r, e.in}, e.a_offset);
    take(e.b_name(), {e.out, table.spec.r}, e.b_offset);
  }
  for (const TensorInfo& t : f.tensors())
    LATHE_CHECK(used.count(t.name), path, ": tensor '", t.name,
                "' is not part of a LoRA adapter "
                "on this model's target modules");
}

}  // namespace lathe
