#include "io/hf_export.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "backend/host_staging.h"
#include "core/error.h"
#include "core/json.h"
#include "io/folder_write.h"
#include "io/safetensors.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace lathe {

namespace {

const char* torch_dtype_name(DType dtype) {
  return dtype == DType::BF16 ? "bfloat16" : dtype == DType::F16 ? "float16" : "float32";
}

// transformers shards at 5 GB by default; keep the same so tools see familiar folders.
constexpr uint64_t kMaxShardBytes = uint64_t(5) * 1000 * 1000 * 1000;

// The source folder's tokenizer files, or with `tokenizer` (extended with special tokens)
// its own. A source with tokenizer.model but no tokenizer.json also gets the tokenizer.json
// lathe tokenizes with, so that transformers reads that instead of converting
// tokenizer.model itself: its converter drops SentencePiece's leading "▁" when
// tokenizer_config.json says "add_prefix_space": null (transformers 4.49 on the Llama 2
// tokenizer.model and tokenizer_config.json of tests/data/tokenizer/llama2: 26785 of the
// 26858 GSM8K, PubMedQA, SAMSum and fuzz texts encode differently from SentencePiece), and
// reads a Llama 3 (tiktoken) tokenizer.model only with packages beyond transformers.
void write_tokenizer_files(const std::string& source_folder, const fs::path& dir,
                           const Tokenizer* tokenizer) {
  if (source_folder.empty()) return;
  const fs::path src(source_folder);
  static const char* const kFiles[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                       "special_tokens_map.json", "generation_config.json"};
  for (const char* name : kFiles) {
    // A saved extended tokenizer replaces these; tokenizer.model could not hold its new
    // tokens, so it is left out rather than contradicting tokenizer.json.
    if (tokenizer && std::string(name) != "generation_config.json") continue;
    if (fs::exists(src / name)) copy_file_into(src / name, dir / name);
  }
  if (tokenizer) {
    tokenizer->save(dir.string());
  } else if (fs::exists(src / "tokenizer.model") && !fs::exists(src / "tokenizer.json")) {
    // A run on pre-tokenized data never read the tokenizer: one lathe cannot read costs the
    // tokenizer.json, not the model at the end of the run.
    std::unique_ptr<Tokenizer> source_tokenizer;
    try {
      source_tokenizer = Tokenizer::load(source_folder);
    } catch (const Error& e) {
      std::fprintf(stderr, "warning: no tokenizer.json written beside tokenizer.model: %s\n",
                   e.what());
    }
    if (source_tokenizer) source_tokenizer->save(dir.string());
  }
}

}  // namespace

void export_hf_model(const LlamaModel& model, const std::string& dir, DType dtype,
                     const std::string& source_folder, const Tokenizer* tokenizer) {
  write_folder_atomic(dir, [&](const fs::path& tmp) {
    std::vector<TensorToWrite> tensors = model.export_tensors(dtype);
    safetensors_write_model(tmp.string(), tensors, size_t(kMaxShardBytes));
    write_file_atomic((tmp / "config.json").string(),
                      llama_config_to_json_text(model.config(), torch_dtype_name(dtype)));
    write_tokenizer_files(source_folder, tmp, tokenizer);
  });
}

void export_hf_model_parallel(const LlamaModel& model, const std::string& dir, DType dtype,
                              const std::string& source_folder, int rank, int world,
                              const std::function<void()>& barrier, bool write_share) {
  const fs::path out(dir);
  const fs::path tmp = out.string() + ".tmp";
  if (rank == 0) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
  }
  barrier();
  // The same greedy 5 GB packing as safetensors_write_model, computed by every process.
  std::vector<std::vector<TensorFromF32>> files(1);
  std::vector<std::pair<size_t, size_t>> file_elems(1, {0, 0});  // flat range of each file
  uint64_t bytes = 0, total = 0;
  // full_shard: this process holds [b, e) of the flat parameters and writes exactly those.
  const auto held =
      model.sharded() ? model.shard_range() : std::pair<size_t, size_t>{0, model.num_params()};
  const HostRead<float> params(model.backend(), model.params(), held.second);
  for (const ParamEntry& e : model.table().entries) {
    const uint64_t nbytes = uint64_t(e.numel) * dtype_size(dtype);
    if (bytes + nbytes > kMaxShardBytes && !files.back().empty()) {
      files.emplace_back(), bytes = 0;
      file_elems.push_back({e.offset, e.offset});
    }
    TensorFromF32 t{e.name, dtype, e.shape, nullptr, 0};
    const size_t lo = std::max(e.offset, held.first);
    const size_t hi = std::min(e.offset + e.numel, held.first + held.second);
    if (lo < hi) t.data = params.get() + (lo - held.first), t.data_first = lo - e.offset;
    if (files.back().empty()) file_elems.back().first = e.offset;
    file_elems.back().second = e.offset + e.numel;
    files.back().push_back(t);
    bytes += nbytes;
    total += nbytes;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < files.size(); ++i) {
    char name[64];
    if (files.size() == 1)
      std::snprintf(name, sizeof name, "model.safetensors");
    else
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, files.size());
    if (model.sharded()) {
      const auto [ff, fl] = file_elems[i];
      const size_t lo = std::clamp(held.first, ff, fl),
                   hi = std::clamp(held.first + held.second, ff, fl);
      std::pair<uint64_t, uint64_t> share{(lo - ff) * dtype_size(dtype),
                                          (hi - ff) * dtype_size(dtype)};
      if (!write_share) share = {0, 0};  // a replica: another process writes these bytes
      safetensors_write_parallel((tmp / name).string(), files[i], rank, world, barrier, &share);
    } else {
      safetensors_write_parallel((tmp / name).string(), files[i], rank, world, barrier);
    }
    for (const TensorFromF32& t : files[i]) weight_map[t.name] = name;
  }
  if (rank != 0) return;
  if (files.size() > 1) {
    const nlohmann::json index = {{"metadata", {{"total_size", total}}},
                                  {"weight_map", weight_map}};
    write_file_atomic((tmp / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  }
  write_file_atomic((tmp / "config.json").string(),
                    llama_config_to_json_text(model.config(), torch_dtype_name(dtype)));
  write_tokenizer_files(source_folder, tmp, nullptr);
  std::error_code ec;
  fs::remove_all(out, ec);
  fs::rename(tmp, out);
}

}  // namespace lathe
