// What `lathe generate` and `lathe chat` share: the model, precision and sampling flags,
// and loading a model folder for generation.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "generate/generator.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace lathe::cli {

struct GenerationFlags {
  std::string model;
  std::string adapter;  // optional PEFT LoRA adapter on top of the model
  int threads = 0;
  std::string device = "auto";  // cpu | cuda | auto
  std::string precision = "fp32";
  bool profile = false;
  GenerationOptions options;
};

// --model, --adapter, --threads, --device, --precision: what loading a model folder needs
// (lathe logits takes only these).
void add_model_flags(CLI::App* cmd, GenerationFlags& f);
// The model flags, then the sampling ones and --profile (lathe generate, lathe chat).
void add_generation_flags(CLI::App* cmd, GenerationFlags& f);

struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Generator> generator;  // EOS ids from the folder's generation_config.json
};
// The folder's model (with the adapter, unmerged, when --adapter is given) and tokenizer;
// no generator. With tokenizer_optional, a folder without tokenizer files (a model trained
// on data.format=input_ids) loads with a null tokenizer.
LoadedModel load_model_folder(const GenerationFlags& f, bool tokenizer_optional = false);
// The same, with a generator.
LoadedModel load_for_generation(const GenerationFlags& f);

// One line on stderr: prefill and decode tokens/s of the last generate() call.
void print_generation_timing(const Generator& g, const Backend& be);

}  // namespace lathe::cli
