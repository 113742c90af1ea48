// GGUF version 3, the file format of llama.cpp and ggml: a header (magic "GGUF", version,
// tensor count, key/value count), typed key/value metadata, one entry per tensor (name,
// dimensions innermost first, ggml type, offset into the data section), then the data
// section, which starts and holds every tensor at a multiple of the alignment (32 bytes,
// general.alignment's default). All integers and floats little-endian; strings are a u64
// byte length and the bytes, without a terminator.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/ggml_quants.h"

namespace lathe {

// GGUF metadata value types.
enum class GgufValueType : uint32_t {
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
};

class GgufWriter {
 public:
  static constexpr uint32_t kAlignment = 32;

  void add_u32(const std::string& key, uint32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_f32s(const std::string& key, const std::vector<float>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  bool has_key(const std::string& key) const;

  // A tensor of `shape` in row-major order, outermost first, as numpy and safetensors write
  // it ([rows, cols] for a matrix; GGUF stores the dimensions reversed). fill(row0, rows,
  // out) writes rows [row0, row0 + rows) in `type`: ggml_row_bytes(type, cols) bytes each.
  using RowFill = std::function<void(int64_t row0, int64_t rows, uint8_t* out)>;
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                  RowFill fill);

  // Writes the file atomically (<path>.tmp, fsync, rename); fills go through a buffer of at
  // most ~64 MiB of rows at a time. Returns the file's size in bytes.
  uint64_t write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
    RowFill fill;
  };
  void key(const std::string& k, GgufValueType t);
  std::string kv_;  // the encoded key/value section
  std::vector<std::string> keys_;
  std::vector<Tensor> tensors_;
};

}  // namespace lathe
