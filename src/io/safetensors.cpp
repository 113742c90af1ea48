#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/json.h"

namespace lathe {

size_t& safetensors_staging_bytes() {
  static size_t bytes = size_t(64) << 20;
  return bytes;
}

namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; lathe maps it without byte swapping");

using nlohmann::json;
namespace fs = std::filesystem;

// The reference implementation refuses larger headers; a bigger value means garbage.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kCorrupt = ": the file is truncated or corrupt; re-download it";
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Byte size of a tensor, or false when shape × dtype overflows size_t.
bool tensor_nbytes(const std::vector<int64_t>& shape, DType dtype, uint64_t* out) {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, uint64_t(d), &n)) return false;
  }
  *out = n;
  return true;
}

TensorInfo parse_entry(const std::string& path, const std::string& name, const json& e,
                       const uint8_t* data, uint64_t data_size, uint64_t file_size) {
  std::string where = str_cat(path, ": tensor '", name, "'");
  LATHE_CHECK(e.is_object(), where, ": header entry must be an object, got ", e.dump(), kCorrupt);
  TensorInfo t;
  t.name = name;
  t.file = path;
  auto dt = e.find("dtype");
  LATHE_CHECK(dt != e.end() && dt->is_string(), where, ": 'dtype' is missing or not a string",
              kCorrupt);
  std::string dname = dt->get<std::string>();
  LATHE_CHECK(dtype_from_name(dname, &t.dtype), where, ": dtype '", dname,
              "' is not supported (lathe reads F32, BF16 and F16 weights); convert the "
              "checkpoint to one of those");
  auto sh = e.find("shape");
  bool shape_ok = sh != e.end() && sh->is_array();
  if (shape_ok) {
    for (const json& d : *sh) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX)) {
        shape_ok = false;
        break;
      }
      t.shape.push_back(int64_t(d.get<uint64_t>()));
    }
  }
  LATHE_CHECK(shape_ok, where, ": 'shape' must be an array of non-negative integers, got ",
              sh == e.end() ? std::string("nothing") : sh->dump(), kCorrupt);
  uint64_t need = 0;
  LATHE_CHECK(tensor_nbytes(t.shape, t.dtype, &need), where, ": shape ", shape_text(t.shape),
              " is too large", kCorrupt);
  auto off = e.find("data_offsets");
  LATHE_CHECK(off != e.end() && off->is_array() && off->size() == 2 &&
                  (*off)[0].is_number_unsigned() && (*off)[1].is_number_unsigned(),
              where, ": 'data_offsets' must be two non-negative integers, got ",
              off == e.end() ? std::string("nothing") : off->dump(), kCorrupt);
  uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
  LATHE_CHECK(begin <= end, where, ": data_offsets [", begin, ",", end, "] end before they begin",
              kCorrupt);
  LATHE_CHECK(end <= data_size, where, ": data_offsets [", begin, ",", end,
              "] run past the end of the file (size ", file_size, ")", kCorrupt);
  LATHE_CHECK(end - begin == need, where, ": data_offsets [", begin, ",", end, "] hold ",
              end - begin, " bytes but shape ", shape_text(t.shape), " of ", dname, " needs ", need,
              " bytes", kCorrupt);
  t.data = data + begin;
  t.nbytes = size_t(need);
  return t;
}

}  // namespace

void safetensors_parse(const std::string& path, const uint8_t* base, size_t size,
                       std::vector<TensorInfo>* tensors,
                       std::map<std::string, std::string>* metadata) {
  LATHE_CHECK(size >= 8, path, ": file is ", size,
              " bytes, too short for a safetensors file (it starts with an 8-byte header length)",
              kCorrupt);
  uint64_t n;
  std::memcpy(&n, base, 8);
  LATHE_CHECK(n <= size - 8, path, ": header length ", n, " is larger than the rest of the file (",
              size - 8, " bytes)", kCorrupt);
  LATHE_CHECK(n <= kMaxHeaderBytes, path, ": header length ", n, " exceeds the ", kMaxHeaderBytes,
              "-byte limit", kCorrupt);
  const uint8_t* hdr = base + 8;
  json j;
  try {
    j = json::parse(hdr, hdr + n);
  } catch (const json::exception& e) {
    fail(path, ": header is not valid JSON (", e.what(), ")", kCorrupt);
  }
  LATHE_CHECK(j.is_object(), path, ": header must be a JSON object, got ", j.type_name(), kCorrupt);
  const uint8_t* data = hdr + n;
  uint64_t data_size = size - 8 - n;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      LATHE_CHECK(it->is_object(), path, ": __metadata__ must be an object", kCorrupt);
      for (auto m = it->begin(); m != it->end(); ++m) {
        LATHE_CHECK(m->is_string(), path, ": __metadata__ value for '", m.key(),
                    "' must be a string, got ", m->dump(), kCorrupt);
        (*metadata)[m.key()] = m->get<std::string>();
      }
      continue;
    }
    tensors->push_back(parse_entry(path, it.key(), *it, data, data_size, size));
  }
  std::sort(tensors->begin(), tensors->end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.data != b.data ? a.data < b.data : a.nbytes < b.nbytes;
  });
  for (size_t i = 1; i < tensors->size(); ++i) {
    const TensorInfo& a = (*tensors)[i - 1];
    const TensorInfo& b = (*tensors)[i];
    const auto* a_end = static_cast<const uint8_t*>(a.data) + a.nbytes;
    if (static_cast<const uint8_t*>(b.data) < a_end) {
      auto off = [&](const TensorInfo& t) { return static_cast<const uint8_t*>(t.data) - data; };
      fail(path, ": tensors '", a.name, "' [", off(a), ",", off(a) + a.nbytes, "] and '", b.name,
           "' [", off(b), ",", off(b) + b.nbytes, "] overlap", kCorrupt);
    }
  }
}

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", path, ": ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("cannot read ", path, ": ", std::strerror(errno));
  return ss.str();
}

struct Chunk {
  const void* data;
  size_t size;
  const std::function<void(void*, size_t, size_t)>* fill = nullptr;  // instead of data
};

// A crash or a full disk must never leave a half-written file under the final name:
// readers would map it and fail much later, or worse, train from garbage.
void write_chunks_atomic(const std::string& path, const std::vector<Chunk>& chunks) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write ", path, ": cannot create ", tmp, ": ", std::strerror(errno));
  auto abandon = [&](const char* step, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail("cannot write ", path, ": ", step, " failed: ", std::strerror(err),
         err == ENOSPC ? " (the disk is full; free space and retry)" : "");
  };
  auto put = [&](const uint8_t* p, size_t left) {
    while (left > 0) {
      ssize_t w = ::write(fd, p, std::min<size_t>(left, size_t(1) << 30));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) abandon("write", w < 0 ? errno : EIO);
      p += w;
      left -= size_t(w);
    }
  };
  // Filled chunks go through one host buffer, sized for the largest piece and reused.
  const size_t piece = std::max<size_t>(8, safetensors_staging_bytes() / 8 * 8);
  std::vector<uint8_t> stage;
  for (const Chunk& c : chunks) {
    if (!c.fill) {
      put(static_cast<const uint8_t*>(c.data), c.size);
      continue;
    }
    stage.resize(std::max(stage.size(), std::min(piece, c.size)));
    for (size_t off = 0; off < c.size; off += piece) {
      const size_t n = std::min(piece, c.size - off);
      try {
        (*c.fill)(stage.data(), off, n);
      } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
      }
      put(stage.data(), n);
    }
  }
  if (::fsync(fd) != 0) abandon("fsync", errno);
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0) abandon("close", errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) abandon("rename", errno);
  // Makes the rename itself durable; best effort, since some filesystems refuse it.
  std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& contents) {
  write_chunks_atomic(path, {{contents.data(), contents.size(), nullptr}});
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail("cannot open ", path, ": ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("cannot open ", path, ": not a regular file");
  }
  size_t size = size_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, ": file is ", size,
         " bytes, too short for a safetensors file (it starts with an 8-byte header length)",
         kCorrupt);
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (m == MAP_FAILED) fail("cannot map ", path, ": ", std::strerror(err));
  map_ = m;
  map_size_ = size;
  try {
    safetensors_parse(path, static_cast<const uint8_t*>(m), size, &tensors_, &metadata_);
  } catch (...) {
    ::munmap(map_, map_size_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

SafetensorsModel::SafetensorsModel(const std::string& folder) : folder_(folder) {
  std::error_code ec;
  fs::path dir(folder);
  if (!fs::is_directory(dir, ec)) {
    if (!fs::exists(dir, ec)) fail("cannot open ", folder, ": No such file or directory");
    fail(folder, ": not a directory; pass the model folder that holds model.safetensors");
  }
  std::string index_path = (dir / kIndexName).string();
  auto add_file = [&](const std::string& file_name) {
    files_.push_back(std::make_unique<SafetensorsFile>((dir / file_name).string()));
    file_names_.push_back(file_name);
    for (const TensorInfo& t : files_.back()->tensors()) {
      auto [it, fresh] = by_name_.emplace(t.name, &t);
      LATHE_CHECK(fresh, folder, ": tensor '", t.name, "' is in both ", it->second->file, " and ",
                  t.file, "; the shards disagree, re-download the model");
    }
  };
  if (!fs::exists(index_path, ec)) {
    LATHE_CHECK(fs::exists(dir / kSingleName, ec), folder, ": neither ", kSingleName, " nor ",
                kIndexName, " found; lathe needs a Hugging Face model folder with safetensors ",
                "weights");
    add_file(kSingleName);
    return;
  }
  json index;
  try {
    index = json::parse(read_text_file(index_path));
  } catch (const json::exception& e) {
    fail(index_path, ": not valid JSON (", e.what(), "); re-download it");
  }
  LATHE_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
              index_path, ": missing the 'weight_map' object that maps tensor names to shards");
  const json& wm = index["weight_map"];
  LATHE_CHECK(!wm.empty(), index_path, ": 'weight_map' is empty; re-download the model");
  std::map<std::string, std::string> first_tensor;  // shard -> a tensor it should hold
  for (auto it = wm.begin(); it != wm.end(); ++it) {
    LATHE_CHECK(it->is_string(), index_path, ": weight_map entry for '", it.key(),
                "' must be a file name string, got ", it->dump());
    std::string file = it->get<std::string>();
    // Shard names come from a downloaded file; keep them inside the folder.
    LATHE_CHECK(!file.empty() && file.find('/') == std::string::npos && file != "." && file != "..",
                index_path, ": weight_map entry for '", it.key(), "' names '", file,
                "', which is not a file name in this folder");
    first_tensor.emplace(file, it.key());
  }
  for (const auto& [file, tensor] : first_tensor) {
    LATHE_CHECK(fs::exists(dir / file, ec), index_path, ": weight_map puts tensor '", tensor,
                "' in ", file, ", but ", (dir / file).string(),
                " does not exist; the download is incomplete, fetch the missing shard");
    add_file(file);
  }
  for (auto it = wm.begin(); it != wm.end(); ++it) {
    std::string file = it->get<std::string>();
    auto found = by_name_.find(it.key());
    LATHE_CHECK(found != by_name_.end() && found->second->file == (dir / file).string(), index_path,
                ": weight_map puts tensor '", it.key(), "' in ", file,
                ", but that file does not contain it", kCorrupt);
  }
  for (const auto& [name, info] : by_name_) {
    LATHE_CHECK(wm.contains(name), index_path, ": tensor '", name, "' is in ", info->file,
                " but not listed in weight_map; the index and the shards disagree", kCorrupt);
  }
}

const TensorInfo* SafetensorsModel::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorInfo& SafetensorsModel::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) {
    std::string files;
    for (const std::string& f : file_names_) files += (files.empty() ? "" : ", ") + f;
    fail(folder_, ": tensor '", name, "' not found in ", files);
  }
  return *t;
}

std::vector<std::string> SafetensorsModel::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& kv : by_name_) out.push_back(kv.first);
  return out;
}

void safetensors_write(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Key order matters for byte-identical output: __metadata__ first, then tensors in data
  // order, each as dtype, shape, data_offsets; serialized without spaces like serde_json.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Chunk> chunks(2);
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    std::string where = str_cat("cannot write ", path, ": tensor '", t.name, "'");
    LATHE_CHECK(!t.name.empty() && t.name != "__metadata__", "cannot write ", path,
                ": invalid tensor name '", t.name, "'");
    LATHE_CHECK(seen.insert(t.name).second, where, " appears twice");
    uint64_t nbytes = 0;
    LATHE_CHECK(tensor_nbytes(t.shape, t.dtype, &nbytes), where, ": invalid shape ",
                shape_text(t.shape));
    LATHE_CHECK(t.data || t.fill || nbytes == 0, where, " has no data");
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    chunks.push_back({t.data, size_t(nbytes), t.fill ? &t.fill : nullptr});
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t n = text.size();
  chunks[0] = {&n, 8, nullptr};
  chunks[1] = {text.data(), text.size(), nullptr};
  write_chunks_atomic(path, chunks);
}

std::vector<std::string> safetensors_write_model(const std::string& folder,
                                                 const std::vector<TensorToWrite>& tensors,
                                                 size_t max_shard_bytes) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  LATHE_CHECK(!ec, "cannot create folder ", folder, ": ", ec.message());
  fs::path dir(folder);
  // Greedy packing in the given order, as transformers' save_pretrained does; a tensor
  // larger than the limit gets a shard of its own.
  std::vector<std::vector<TensorToWrite>> shards;
  uint64_t shard_bytes = 0, total = 0;
  for (const TensorToWrite& t : tensors) {
    uint64_t nbytes = 0;
    LATHE_CHECK(tensor_nbytes(t.shape, t.dtype, &nbytes), "cannot write ", folder, ": tensor '",
                t.name, "': invalid shape ", shape_text(t.shape));
    if (shards.empty() || (shard_bytes + nbytes > max_shard_bytes && !shards.back().empty())) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += nbytes;
    total += nbytes;
  }
  std::string index_path = (dir / kIndexName).string();
  if (shards.size() <= 1) {
    safetensors_write((dir / kSingleName).string(), tensors);
    // A leftover index would take precedence over the new file when loading.
    fs::remove(index_path, ec);
    LATHE_CHECK(!ec, "cannot remove stale ", index_path, ": ", ec.message());
    return {kSingleName};
  }
  std::vector<std::string> names;
  json weight_map = json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    safetensors_write((dir / name).string(), shards[i]);
    for (const TensorToWrite& t : shards[i]) weight_map[t.name] = name;
    names.push_back(name);
  }
  // Written last so that a folder with an index always has every shard it names.
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic(index_path, index.dump(2) + "\n");
  names.push_back(kIndexName);
  return names;
}

void safetensors_write_parallel(const std::string& path, const std::vector<TensorFromF32>& tensors,
                                int rank, int world, const std::function<void()>& barrier,
                                const std::pair<uint64_t, uint64_t>* share) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::vector<uint64_t> begin;
  uint64_t offset = 0;
  for (const TensorFromF32& t : tensors) {
    uint64_t nbytes = 0;
    LATHE_CHECK(tensor_nbytes(t.shape, t.dtype, &nbytes), "cannot write ", path, ": tensor '",
                t.name, "': invalid shape ", shape_text(t.shape));
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    begin.push_back(offset);
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t data_start = 8 + text.size(), total = data_start + offset;
  const std::string tmp = path + ".tmp";
  auto check_io = [&](bool ok, const char* step) {
    if (ok) return;
    const int err = errno;
    fail("cannot write ", path, " (process ", rank, "): ", step, " failed: ", std::strerror(err),
         err == ENOSPC ? " (the disk is full; free space and retry)" : "");
  };
  if (rank == 0) {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    check_io(fd >= 0, "create");
    const uint64_t n = text.size();
    check_io(::pwrite(fd, &n, 8, 0) == 8, "write");
    check_io(::pwrite(fd, text.data(), text.size(), 8) == ssize_t(text.size()), "write");
    check_io(::ftruncate(fd, off_t(total)) == 0, "ftruncate");
    check_io(::close(fd) == 0, "close");
  }
  barrier();
  // This process's share: an equal slice of the data section's bytes.
  const uint64_t per = (offset + uint64_t(world) - 1) / uint64_t(world);
  uint64_t lo = std::min(offset, per * uint64_t(rank)), hi = std::min(offset, lo + per);
  if (share) lo = std::min(offset, share->first), hi = std::min(offset, share->second);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CLOEXEC);
  check_io(fd >= 0, "open");
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorFromF32& t = tensors[i];
    const uint64_t es = dtype_size(t.dtype), b = begin[i];
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= uint64_t(d);
    const uint64_t tb = std::max(lo, b), te = std::min(hi, b + numel * es);
    if (tb >= te) continue;
    // Shares are cut at byte boundaries: convert the whole elements that cover them and
    // write only the bytes inside this share.
    const uint64_t first = (tb - b) / es, last = (te - b + es - 1) / es;
    buf.resize(size_t((last - first) * es));
    LATHE_CHECK(first >= t.data_first, "cannot write ", path, ": tensor '", t.name, "': process ",
                rank, " does not hold the elements it is to write");
    convert_from_f32(t.data + (first - t.data_first), buf.data(), t.dtype, size_t(last - first));
    const uint8_t* src = buf.data() + (tb - b - first * es);
    uint64_t left = te - tb, at = data_start + tb;
    while (left > 0) {
      const ssize_t w =
          ::pwrite(fd, src, size_t(std::min<uint64_t>(left, uint64_t(1) << 30)), off_t(at));
      if (w < 0 && errno == EINTR) continue;
      check_io(w > 0, "write");
      src += w, at += uint64_t(w), left -= uint64_t(w);
    }
  }
  check_io(::fsync(fd) == 0, "fsync");
  check_io(::close(fd) == 0, "close");
  barrier();
  if (rank != 0) return;
  check_io(std::rename(tmp.c_str(), path.c_str()) == 0, "rename");
}

}  // namespace lathe
