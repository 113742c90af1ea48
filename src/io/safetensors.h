// safetensors: read (memory-mapped, every header entry validated) and write
// (streamed to a temporary file, fsync'ed, renamed into place only when complete).
// Format: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data section; offsets are relative to the start of the data section.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace lathe {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // points into the mapping
  size_t nbytes = 0;
  std::string file;  // the file it lives in, for error messages
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// One memory-mapped .safetensors file. Throws lathe::Error naming the file (and the
// tensor) when the file is missing, truncated, has a malformed header, an unknown dtype,
// offsets out of range or overlapping, or a byte size that disagrees with shape × dtype.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const TensorInfo* find(const std::string& name) const;               // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The header of a safetensors image already in memory (`size` bytes at `base`, e.g. a
// mapped file): fills `tensors` (pointing into `base`, sorted by offset) and `metadata`
// with the same checks, and the same lathe::Error messages naming `path`, as
// SafetensorsFile.
void safetensors_parse(const std::string& path, const uint8_t* base, size_t size,
                       std::vector<TensorInfo>* tensors,
                       std::map<std::string, std::string>* metadata);

// All weights of an HF model folder: model.safetensors, or the shards listed in
// model.safetensors.index.json ("weight_map"). Each name must be in exactly one shard and
// the index must agree with the shards' contents.
class SafetensorsModel {
 public:
  explicit SafetensorsModel(const std::string& folder);
  const TensorInfo* find(const std::string& name) const;
  // Throws "<folder>: tensor '<name>' not found in <files>" when absent.
  const TensorInfo& get(const std::string& name) const;
  std::vector<std::string> names() const;
  // File names relative to the folder, e.g. "model-00001-of-00002.safetensors".
  const std::vector<std::string>& files() const { return file_names_; }

 private:
  std::string folder_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<std::string> file_names_;
  std::map<std::string, const TensorInfo*> by_name_;
};

// A tensor to be written. `data` must hold numel(shape) × dtype_size(dtype) bytes.
struct TensorToWrite {
  TensorToWrite() = default;
  TensorToWrite(std::string n, DType d, std::vector<int64_t> s, const void* p)
      : name(std::move(n)), dtype(d), shape(std::move(s)), data(p) {}
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  // Instead of data, for bytes that are not in host memory (a GPU's weights, or values
  // still to be converted): fill(dst, offset, bytes) writes the tensor's bytes
  // [offset, offset + bytes) to dst. The writer calls it piece by piece through one reused
  // host buffer of at most safetensors_staging_bytes(), a multiple of 8 bytes (so pieces
  // hold whole elements), so a save holds that much in host memory, not the tensor.
  std::function<void(void* dst, size_t offset, size_t bytes)> fill;
};

// The bound on the host buffer for TensorToWrite::fill: 64 MiB by default, small next to
// a 7B model's 28 GB of fp32 weights (and 2 × 28 GB of AdamW moments in a checkpoint), and
// large enough that a write is a few hundred big copies, not millions. Tests lower it.
size_t& safetensors_staging_bytes();

// Writes one file atomically (tmp + fsync + rename); tensors are laid out contiguously in
// the given order, and the header is padded with spaces so that the data section starts at
// a multiple of 8 bytes, as the reference writer does. Throws naming the path on any I/O
// error (e.g. disk full), leaving no partial file behind.
void safetensors_write(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes an HF model folder's weights: a single model.safetensors when the total is
// below max_shard_bytes, else model-0000i-of-0000n.safetensors plus
// model.safetensors.index.json (metadata.total_size, weight_map), like transformers'
// save_pretrained. Returns the file names written (shards, then the index last); the index
// is written after every shard, and a stale index is removed when writing a single file.
std::vector<std::string> safetensors_write_model(const std::string& folder,
                                                 const std::vector<TensorToWrite>& tensors,
                                                 size_t max_shard_bytes);

// One safetensors file written by several processes at once, each holding the same fp32
// values (data-parallel replicas): every process computes the same layout, process 0
// creates the file at full size with its header, then each writes its share of the data
// section's bytes (converted to the tensor's dtype on the way), and process 0 renames it
// into place once all are done. barrier() must be a collective over the processes.
struct TensorFromF32 {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // element `data_first` of the tensor (0: all of it)
  size_t data_first = 0;
};
// share: the data-section bytes this process writes (default: an equal slice); the
// tensors' data must cover them (full_shard: each process writes the bytes it holds).
void safetensors_write_parallel(const std::string& path, const std::vector<TensorFromF32>& tensors,
                                int rank, int world, const std::function<void()>& barrier,
                                const std::pair<uint64_t, uint64_t>* share = nullptr);

// Replaces `path` with `contents` atomically (tmp + fsync + rename), e.g. for config.json.
// Throws naming the path and the OS error.
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace lathe
