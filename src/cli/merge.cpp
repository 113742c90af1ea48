// lathe merge --base DIR --adapter DIR -o OUT: fold a LoRA adapter into its base model and
// write a plain HF model folder (transformers and vLLM load it without PEFT).
#include <cstdio>
#include <memory>
#include <string>

#include "backend/select.h"
#include "cli/verbs.h"
#include "core/error.h"
#include "io/hf_export.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "model/llama.h"
#include "model/lora_merge.h"

namespace lathe::cli {

Action add_merge(CLI::App& app) {
  auto* cmd = app.add_subcommand("merge", "Fold a LoRA adapter into its base model (W + alpha/r·B·A)");
  struct Opts {
    std::string base, adapter, out, dtype;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--base", o->base, "base HF model folder")->required();
  cmd->add_option("--adapter", o->adapter, "PEFT adapter folder (adapter_config.json)")->required();
  cmd->add_option("-o,--output", o->out, "folder to write the merged model to")->required();
  cmd->add_option("--dtype", o->dtype, "saved dtype: bf16 or fp32 (default: the base's)")
      ->check(CLI::IsMember({"bf16", "fp32"}));
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)");
  return [o]() {
    // On the CPU on every build: a merge is one pass of small products, and its fp32
    // result should not depend on which GPU (or none) the machine has.
    auto be = make_backend("cpu", o->threads);
    const LlamaConfig mc = llama_config_from_json_file(o->base + "/config.json");
    LoraSpec spec = read_peft_config(o->adapter);
    const LoraTable table = make_lora_table(mc, spec);
    std::vector<float> adapter(table.total);
    load_peft_weights(o->adapter, table, adapter.data());
    LlamaModel model(mc, *be, Precision::FP32, false);
    model.load(SafetensorsModel(o->base));
    merge_lora(model, table, adapter.data());
    std::string dtype = o->dtype;
    if (dtype.empty()) dtype = mc.torch_dtype == "bfloat16" ? "bf16" : "fp32";
    export_hf_model(model, o->out, dtype == "bf16" ? DType::BF16 : DType::F32, o->base);
    std::fprintf(stderr, "merged %s (r=%lld, alpha=%g, %zu adapted projections) into %s -> %s (%s)\n",
                 o->adapter.c_str(), static_cast<long long>(spec.r), spec.alpha,
                 table.entries.size(), o->base.c_str(), o->out.c_str(), dtype.c_str());
    return 0;
  };
}

}  // namespace lathe::cli
