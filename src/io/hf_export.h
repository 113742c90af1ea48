// Writes a Hugging Face model folder that transformers loads unchanged: config.json,
// model.safetensors (or shards + index), and the input folder's tokenizer files.
#pragma once
#include <string>

#include "core/dtype.h"

namespace lathe {

class LlamaModel;
class Tokenizer;

// Writes into <dir>.tmp and renames to <dir> when complete. With `tokenizer` (one that
// was extended with special tokens) its files are written instead of copying the
// source folder's tokenizer files.
void export_hf_model(const LlamaModel& model, const std::string& dir, DType dtype,
                     const std::string& source_folder, const Tokenizer* tokenizer = nullptr);

}  // namespace lathe
