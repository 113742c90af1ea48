#include "io/hf_export.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace lathe {

void export_hf_model(const LlamaModel& model, const std::string& dir, DType dtype,
                     const std::string& source_folder, const Tokenizer* tokenizer) {
  const fs::path out(dir);
  const fs::path tmp = out.string() + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp);
  std::vector<uint8_t> storage;
  std::vector<TensorToWrite> tensors = model.export_tensors(dtype, storage);
  // transformers shards at 5 GB by default; keep the same so tools see familiar folders.
  safetensors_write_model(tmp.string(), tensors, size_t(5) * 1000 * 1000 * 1000);
  const char* torch_dtype = dtype == DType::BF16 ? "bfloat16" : dtype == DType::F16 ? "float16" : "float32";
  write_file_atomic((tmp / "config.json").string(),
                    llama_config_to_json_text(model.config(), torch_dtype));
  static const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer.model",
                                                "tokenizer_config.json", "special_tokens_map.json",
                                                "generation_config.json"};
  for (const char* name : kTokenizerFiles) {
    if (source_folder.empty()) break;
    // A saved extended tokenizer replaces these; tokenizer.model could not hold its new
    // tokens, so it is left out rather than contradicting tokenizer.json.
    if (tokenizer && std::string(name) != "generation_config.json") continue;
    const fs::path src = fs::path(source_folder) / name;
    if (fs::exists(src)) fs::copy_file(src, tmp / name, fs::copy_options::overwrite_existing);
  }
  if (tokenizer) tokenizer->save(tmp.string());
  fs::remove_all(out, ec);
  fs::rename(tmp, out);
}

}  // namespace lathe
