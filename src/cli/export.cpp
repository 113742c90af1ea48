// lathe export --model DIR --gguf OUT.gguf --type T: an HF model folder (a fine-tuned
// final/, a merged model, any Llama folder lathe reads) as one GGUF file for llama.cpp,
// Ollama and the tools built on ggml.
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "cli/verbs.h"
#include "io/gguf_export.h"

namespace lathe::cli {

Action add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export",
      "Write an HF model folder as a GGUF file for llama.cpp (f32, f16, bf16, q8_0, q4_0, q4_k)");
  cmd->footer(
      "f32, f16, bf16 and q8_0 are what llama.cpp's convert_hf_to_gguf.py writes; q4_0 and q4_k\n"
      "what llama-quantize --pure makes of its f32 file, with ggml's reference quantizers.\n"
      "Norms stay f32. A weight whose rows are not whole blocks of the type falls back\n"
      "(q8_0 and q4_0 to f16, q4_k to q5_0, else f16), as those tools do; the report lists it.\n");
  struct Opts {
    std::string model, out, type = "f16", name;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--model", o->model, "HF model folder (config.json, *.safetensors, tokenizer)")
      ->required();
  cmd->add_option("--gguf", o->out, "GGUF file to write (atomically: OUT.tmp, then renamed)")
      ->required();
  cmd->add_option("--type", o->type, "f32, f16, bf16, q8_0, q4_0 or q4_k")->capture_default_str();
  cmd->add_option("--name", o->name, "general.name in the file (default: the model folder's name)");
  cmd->add_option("--threads", o->threads, "quantization threads (0 = all cores)")
      ->capture_default_str();
  return [o]() {
    GgufExportOptions opts;
    opts.type = o->type;
    opts.name = o->name;
    opts.threads = o->threads;
    const GgufExportReport r = export_gguf(o->model, o->out, opts);
    std::map<std::string, int> by_type;
    for (const GgufTensorReport& t : r.tensors) {
      ++by_type[ggml_type_name(t.type)];
      if (!t.fallback.empty())
        std::fprintf(stderr, "note: %s: %s\n", t.name.c_str(), t.fallback.c_str());
    }
    std::string types;
    for (const auto& [name, n] : by_type)
      types += (types.empty() ? "" : ", ") + std::to_string(n) + " " + name;
    std::fprintf(stderr, "wrote %s: %s, %zu tensors (%s), %lld parameters, %.2f MB; tokenizer %s\n",
                 o->out.c_str(), o->type.c_str(), r.tensors.size(), types.c_str(),
                 static_cast<long long>(r.parameters), double(r.bytes) / 1e6, r.vocab.c_str());
    return 0;
  };
}

}  // namespace lathe::cli
