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

void add_generation_flags(CLI::App* cmd, GenerationFlags& f);

struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Generator> generator;  // EOS ids from the folder's generation_config.json
};
LoadedModel load_for_generation(const GenerationFlags& f);

// One line on stderr: prefill and decode tokens/s of the last generate() call.
void print_generation_timing(const Generator& g, const Backend& be);

}  // namespace lathe::cli
