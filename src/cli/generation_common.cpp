#include "cli/generation_common.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "backend/host_staging.h"
#include "backend/select.h"
#include "core/error.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"

namespace lathe::cli {

void add_model_flags(CLI::App* cmd, GenerationFlags& f) {
  cmd->add_option("--model", f.model, "HF model folder (config.json, *.safetensors, tokenizer)")
      ->required();
  cmd->add_option("--adapter", f.adapter,
                  "PEFT LoRA adapter folder applied on top of --model (unmerged)");
  cmd->add_option("--threads", f.threads, "0 = all cores")->capture_default_str();
  cmd->add_option("--device", f.device,
                  "cpu, cuda, or auto (cuda if this build has it and a GPU is visible)")
      ->capture_default_str();
  cmd->add_option("--precision", f.precision, "fp32 or bf16")->capture_default_str();
}

void add_generation_flags(CLI::App* cmd, GenerationFlags& f) {
  add_model_flags(cmd, f);
  GenerationOptions& o = f.options;
  cmd->add_option("--max-new-tokens", o.max_new_tokens, "tokens to generate at most")
      ->capture_default_str();
  cmd->add_option("--temperature", o.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o.top_k, "keep the k most likely tokens (0 = off)")
      ->capture_default_str();
  cmd->add_option("--top-p", o.top_p, "nucleus sampling (1 = off)")->capture_default_str();
  cmd->add_option("--repetition-penalty", o.repetition_penalty, "HF repetition penalty (1 = off)")
      ->capture_default_str();
  cmd->add_option("--stop", o.stop_strings, "stop when the output contains this text (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--seed", o.seed, "sampling seed")->capture_default_str();
  cmd->add_flag("--ignore-eos", o.ignore_eos, "do not stop at EOS (for benchmarks)");
  cmd->add_flag("--profile", f.profile, "print the time spent in each op at exit");
}

LoadedModel load_model_folder(const GenerationFlags& f, bool tokenizer_optional) {
  namespace fs = std::filesystem;
  LATHE_CHECK(fs::is_directory(f.model), "--model ", f.model,
              ": not a folder; give an HF model folder with config.json and *.safetensors");
  LoadedModel m;
  m.backend = make_backend(f.device, f.threads);
  std::fprintf(stderr, "device: %s\n", m.backend->description().c_str());
  if (f.profile) m.backend = make_profiling_backend(std::move(m.backend));
  const LlamaConfig cfg = llama_config_from_json_file((fs::path(f.model) / "config.json").string());
  if (f.adapter.empty()) {
    m.model = std::make_unique<LlamaModel>(cfg, *m.backend, precision_from_name(f.precision), false);
    m.model->load(SafetensorsModel(f.model));
  } else {
    // The base stays as precise as the products read it; the adapter runs beside it.
    AdapterSetup a;
    a.lora = read_peft_config(f.adapter);
    a.lora.dropout = 0;
    a.base_dtype = f.precision == "bf16" ? BaseDtype::BF16 : BaseDtype::F32;
    m.model = std::make_unique<LlamaModel>(cfg, *m.backend, precision_from_name(f.precision), false, &a);
    m.model->load(SafetensorsModel(f.model));
    HostWrite<float> lora(*m.backend, m.model->lora_params(), m.model->lora_table().total);
    load_peft_weights(f.adapter, m.model->lora_table(), lora.get());
    lora.commit();
    m.model->refresh_compute_weights();
  }
  const bool has_tokenizer = fs::exists(fs::path(f.model) / "tokenizer.json") ||
                             fs::exists(fs::path(f.model) / "tokenizer.model");
  if (has_tokenizer || !tokenizer_optional) m.tokenizer = Tokenizer::load(f.model);
  return m;
}

LoadedModel load_for_generation(const GenerationFlags& f) {
  LoadedModel m = load_model_folder(f);
  m.generator = std::make_unique<Generator>(*m.model, *m.backend, m.tokenizer.get());
  // The folder's EOS list (Llama 3 instruct: <|end_of_text|> and <|eot_id|>) and the
  // tokenizer's own EOS all end a sequence.
  std::vector<int32_t> eos = read_eos_token_ids(f.model);
  for (int32_t id : m.generator->eos_tokens())
    if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
  m.generator->set_eos_tokens(eos);
  return m;
}

void print_generation_timing(const Generator& g, const Backend& be) {
  std::fflush(stdout);  // the completions first, when both go to one terminal or file
  const GenerationStats& s = g.stats();
  auto rate = [](int64_t n, double t) { return t > 0 ? double(n) / t : 0.0; };
  std::fprintf(stderr,
               "prefill: %lld tokens in %.3f s (%.1f tok/s); decode: %lld tokens in %.3f s "
               "(%.1f tok/s); %lld prompts, batch %lld, %d threads\n",
               static_cast<long long>(s.prefill_tokens), s.prefill_s,
               rate(s.prefill_tokens, s.prefill_s), static_cast<long long>(s.decode_tokens),
               s.decode_s, rate(s.decode_tokens, s.decode_s), static_cast<long long>(s.prompts),
               static_cast<long long>(s.batch_slots), be.threads());
}

}  // namespace lathe::cli
