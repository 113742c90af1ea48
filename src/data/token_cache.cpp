#include "data/token_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/paths.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

constexpr char kMagic[8] = {'L', 'A', 'T', 'H', 'E', 'T', 'O', 'K'};
constexpr uint32_t kVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t reserved;
  uint64_t key, rows, tokens;
};

uint64_t fnv1a(const unsigned char* p, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

uint64_t hash_file(const std::string& path, uint64_t h) {
  std::ifstream f(path, std::ios::binary);
  LATHE_CHECK(f, "cannot open ", path, ": ", std::strerror(errno));
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), std::streamsize(buf.size()));
    h = fnv1a(reinterpret_cast<const unsigned char*>(buf.data()), size_t(f.gcount()), h);
  }
  return h;
}

uint64_t hash_text(const std::string& text, uint64_t h) {
  h = fnv1a(reinterpret_cast<const unsigned char*>(text.data()), text.size(), h);
  return fnv1a(reinterpret_cast<const unsigned char*>("\0"), 1, h);  // field separator
}

std::string default_token_cache_dir() {
  return user_cache_dir() + "/datasets";
}

std::string token_cache_path(const std::string& cache_dir, uint64_t key) {
  char name[40];
  std::snprintf(name, sizeof name, "%016llx.lathetok", static_cast<unsigned long long>(key));
  return (fs::path(cache_dir) / name).string();
}

void token_cache_write(const std::string& path, uint64_t key, const std::vector<TokenRow>& rows) {
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.key = key;
  h.rows = rows.size();
  std::vector<uint64_t> offsets{0};
  for (const TokenRow& r : rows) offsets.push_back(offsets.back() + r.input_ids.size());
  h.tokens = offsets.back();
  fs::create_directories(fs::path(path).parent_path());
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(&h), sizeof h);
    f.write(reinterpret_cast<const char*>(offsets.data()), std::streamsize(offsets.size() * 8));
    for (const TokenRow& r : rows)
      f.write(reinterpret_cast<const char*>(r.input_ids.data()), std::streamsize(r.input_ids.size() * 4));
    for (const TokenRow& r : rows) {
      const std::vector<int32_t>& l = r.labels.empty() ? r.input_ids : r.labels;
      f.write(reinterpret_cast<const char*>(l.data()), std::streamsize(l.size() * 4));
    }
    f.flush();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      fail("cannot write the token cache ", path, ": ", std::strerror(errno), " (is the disk full?)");
    }
  }
  fs::rename(tmp, path);
}

std::optional<std::vector<TokenRow>> token_cache_read(const std::string& path, uint64_t key) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  ::fstat(fd, &st);
  const size_t size = size_t(st.st_size);
  if (size < sizeof(Header)) {
    ::close(fd);
    return std::nullopt;
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return std::nullopt;
  const char* base = static_cast<const char*>(map);
  Header h;
  std::memcpy(&h, base, sizeof h);
  std::optional<std::vector<TokenRow>> out;
  const size_t need = sizeof h + (h.rows + 1) * 8 + h.tokens * 8;
  if (std::memcmp(h.magic, kMagic, 8) == 0 && h.version == kVersion && h.key == key && size == need) {
    const uint64_t* offsets = reinterpret_cast<const uint64_t*>(base + sizeof h);
    const int32_t* ids = reinterpret_cast<const int32_t*>(offsets + h.rows + 1);
    const int32_t* labels = ids + h.tokens;
    std::vector<TokenRow> rows(h.rows);
    bool ok = offsets[h.rows] == h.tokens;
    for (uint64_t i = 0; ok && i < h.rows; ++i) {
      ok = offsets[i] <= offsets[i + 1];
      if (!ok) break;
      rows[i].input_ids.assign(ids + offsets[i], ids + offsets[i + 1]);
      if (std::memcmp(ids + offsets[i], labels + offsets[i], (offsets[i + 1] - offsets[i]) * 4) != 0)
        rows[i].labels.assign(labels + offsets[i], labels + offsets[i + 1]);
    }
    if (ok) out = std::move(rows);
  }
  ::munmap(map, size);
  return out;
}

}  // namespace lathe
