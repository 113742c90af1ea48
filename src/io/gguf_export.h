// HF Llama model folder -> one GGUF file that llama.cpp loads, as llama.cpp's
// convert_hf_to_gguf.py writes it (f32, f16, bf16, q8_0) or as that f32 file after
// `llama-quantize --pure` (q4_0, q4_K):
// - metadata general.* and llama.* from config.json, tokenizer.* from the tokenizer files
//   (gguf_vocab.h);
// - tensors under llama.cpp's names (token_embd, blk.N.attn_q, ..., output_norm, output),
//   q_proj and k_proj rows permuted from HF's rotate-half RoPE layout back to the
//   interleaved pairs llama.cpp rotates (the converter's LlamaModel.permute), and for llama3
//   rope scaling a rope_freqs tensor of per-frequency factors;
// - norms and other 1-D tensors stay f32; a weight whose rows do not fill whole blocks of the
//   chosen type falls back as the converter (q8_0 -> f16) or llama-quantize (q4_K -> q5_0
//   -> f16, q4_0 -> f16) does, and the report says which.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/ggml_quants.h"

namespace lathe {

// The --type values: f32, f16, bf16, q8_0, q4_0, q4_k.
struct GgufFileType {
  std::string name;
  GgmlType weights;    // what 2-D weights are stored as where their rows allow
  uint32_t file_type;  // general.file_type (llama_ftype)
};
// Throws naming the accepted values when `name` is none of them.
GgufFileType gguf_file_type(const std::string& name);
const std::vector<std::string>& gguf_file_type_names();

struct GgufExportOptions {
  std::string type = "f16";
  std::string name;  // general.name; empty: the model folder's name
  int threads = 0;   // quantization threads (0: all cores)
};

struct GgufTensorReport {
  std::string name;
  std::vector<int64_t> shape;  // [rows, cols] as in the HF file
  GgmlType type;
  std::string fallback;  // why not the requested type; empty when it is
};

struct GgufExportReport {
  std::string vocab;  // what the tokenizer metadata came from
  std::vector<GgufTensorReport> tensors;
  int64_t parameters = 0;
  uint64_t bytes = 0;
};

GgufExportReport export_gguf(const std::string& model_dir, const std::string& out_path,
                             const GgufExportOptions& options);

}  // namespace lathe
