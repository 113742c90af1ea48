#include "io/gguf_writer.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "io/atomic_file.h"

namespace lathe {
namespace {

template <class T>
void put(std::string& out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  out.append(bytes, sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

constexpr size_t kFillBytes = size_t(64) << 20;

}  // namespace

void GgufWriter::key(const std::string& k, GgufValueType t) {
  LATHE_CHECK(!has_key(k), "GGUF key ", k, " written twice");
  keys_.push_back(k);
  put_string(kv_, k);
  put<uint32_t>(kv_, uint32_t(t));
}

bool GgufWriter::has_key(const std::string& k) const {
  return std::find(keys_.begin(), keys_.end(), k) != keys_.end();
}

void GgufWriter::add_u32(const std::string& k, uint32_t v) {
  key(k, GgufValueType::UINT32);
  put(kv_, v);
}

void GgufWriter::add_f32(const std::string& k, float v) {
  key(k, GgufValueType::FLOAT32);
  put(kv_, v);
}

void GgufWriter::add_bool(const std::string& k, bool v) {
  key(k, GgufValueType::BOOL);
  put<uint8_t>(kv_, v ? 1 : 0);
}

void GgufWriter::add_string(const std::string& k, const std::string& v) {
  key(k, GgufValueType::STRING);
  put_string(kv_, v);
}

void GgufWriter::add_strings(const std::string& k, const std::vector<std::string>& v) {
  key(k, GgufValueType::ARRAY);
  put<uint32_t>(kv_, uint32_t(GgufValueType::STRING));
  put<uint64_t>(kv_, v.size());
  for (const std::string& s : v) put_string(kv_, s);
}

void GgufWriter::add_f32s(const std::string& k, const std::vector<float>& v) {
  key(k, GgufValueType::ARRAY);
  put<uint32_t>(kv_, uint32_t(GgufValueType::FLOAT32));
  put<uint64_t>(kv_, v.size());
  for (float f : v) put(kv_, f);
}

void GgufWriter::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
  key(k, GgufValueType::ARRAY);
  put<uint32_t>(kv_, uint32_t(GgufValueType::INT32));
  put<uint64_t>(kv_, v.size());
  for (int32_t i : v) put(kv_, i);
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type,
                            const std::vector<int64_t>& shape, RowFill fill) {
  LATHE_ASSERT(!shape.empty() && shape.size() <= 4);
  LATHE_ASSERT(shape.back() % ggml_block_size(type) == 0);
  for (const Tensor& t : tensors_)
    LATHE_CHECK(t.name != name, "GGUF tensor ", name, " written twice");
  tensors_.push_back({name, type, shape, std::move(fill)});
}

uint64_t GgufWriter::write(const std::string& path) const {
  std::string head;
  head += "GGUF";
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, keys_.size());
  head += kv_;
  std::vector<uint64_t> offsets, sizes;
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    int64_t rows = 1;
    for (size_t d = 0; d + 1 < t.shape.size(); ++d) rows *= t.shape[d];
    const uint64_t size = uint64_t(rows) * ggml_row_bytes(t.type, t.shape.back());
    put_string(head, t.name);
    put<uint32_t>(head, uint32_t(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) put<uint64_t>(head, uint64_t(*d));
    put<uint32_t>(head, uint32_t(t.type));
    put<uint64_t>(head, offset);
    offsets.push_back(offset);
    sizes.push_back(size);
    offset = align_up(offset + size, kAlignment);
  }
  head.resize(align_up(head.size(), kAlignment), '\0');

  AtomicFile file(path);
  file.write(head.data(), head.size());
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    const int64_t rows = int64_t(sizes[i] / ggml_row_bytes(t.type, t.shape.back()));
    const size_t row_bytes = ggml_row_bytes(t.type, t.shape.back());
    const int64_t chunk =
        std::max<int64_t>(1, int64_t(kFillBytes / std::max<size_t>(row_bytes, 1)));
    for (int64_t r = 0; r < rows; r += chunk) {
      const int64_t n = std::min(chunk, rows - r);
      buf.resize(size_t(n) * row_bytes);
      t.fill(r, n, buf.data());
      file.write(buf.data(), buf.size());
    }
    file.write_zeros(size_t(align_up(sizes[i], kAlignment) - sizes[i]));
  }
  const uint64_t total = file.written();
  file.commit();
  return total;
}

}  // namespace lathe
