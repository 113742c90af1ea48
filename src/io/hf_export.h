// Writes a Hugging Face model folder that transformers loads unchanged: config.json,
// model.safetensors (or shards + index), and the input folder's tokenizer files.
#pragma once
#include <functional>
#include <string>

#include "core/dtype.h"

namespace lathe {

class LlamaModel;
class Tokenizer;

// Writes into <dir>.tmp and renames to <dir> when complete. With `tokenizer` (one that
// was extended with special tokens) its files are written instead of copying the
// source folder's tokenizer files. A source with tokenizer.model and no tokenizer.json
// also gets a tokenizer.json, so that transformers tokenizes as lathe does.
void export_hf_model(const LlamaModel& model, const std::string& dir, DType dtype,
                     const std::string& source_folder, const Tokenizer* tokenizer = nullptr);

// Data parallel: every process holds the same weights and calls this; each writes an equal
// share of every file's bytes in parallel (safetensors_write_parallel), process 0 writes the
// index, config and tokenizer files and renames <dir>.tmp to <dir> after the last byte.
void export_hf_model_parallel(const LlamaModel& model, const std::string& dir, DType dtype,
                              const std::string& source_folder, int rank, int world,
                              const std::function<void()>& barrier, bool write_share = true);

}  // namespace lathe
