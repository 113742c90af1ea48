#include "metrics/tensorboard.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/json_number.h"
#include "core/wall_clock.h"
#include "tensorboard_event.pb.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected 0x1EDC6F41
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// TFRecord stores CRCs rotated and offset ("masked"), so a CRC of data holding CRCs stays
// well distributed.
uint32_t masked_crc(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = kCrc32cTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  fs::create_directories(dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  const double t = wall_clock_seconds();
  // TensorBoard reads a folder's files in name order; the name starts with the time.
  path_ = (fs::path(dir) /
           str_cat("events.out.tfevents.", int64_t(t), ".", host, ".", ::getpid(), ".0"))
              .string();
  out_.open(path_, std::ios::binary | std::ios::trunc);
  LATHE_CHECK(out_, "cannot create ", path_, ": ", std::strerror(errno));
  tensorboard::Event e;
  e.set_wall_time(t);
  e.set_file_version("brain.Event:2");
  write_record(e.SerializeAsString());
}

void TensorBoardWriter::write_record(const std::string& bytes) {
  // TFRecord: length (u64 LE), masked CRC of the length, the bytes, masked CRC of them.
  const uint64_t len = bytes.size();
  const uint32_t len_crc = masked_crc(&len, sizeof len), data_crc = masked_crc(bytes.data(), len);
  out_.write(reinterpret_cast<const char*>(&len), sizeof len);
  out_.write(reinterpret_cast<const char*>(&len_crc), sizeof len_crc);
  out_.write(bytes.data(), std::streamsize(len));
  out_.write(reinterpret_cast<const char*>(&data_crc), sizeof data_crc);
  out_.flush();
  LATHE_CHECK(out_, "cannot write ", path_, ": ", std::strerror(errno),
              errno == ENOSPC ? " (the disk is full; free space)" : "");
}

void TensorBoardWriter::log(const nlohmann::json& line) {
  if (!line.is_object() || !line.contains("step")) return;
  const auto step = json_integer<int64_t>(line["step"]);
  if (!step) return;  // a line a crash cut short, or not a training line
  tensorboard::Event e;
  e.set_wall_time(json_double(line.value("time", nlohmann::json())).value_or(wall_clock_seconds()));
  e.set_step(*step);
  for (const auto& [key, v] : line.items()) {
    if (key == "step" || key == "time" || !v.is_number()) continue;
    auto* value = e.mutable_summary()->add_value();
    value->set_tag(key);
    value->set_simple_value(v.get<float>());
  }
  if (e.summary().value_size() > 0) write_record(e.SerializeAsString());
}

TensorBoardWriter rebuild_tensorboard(const std::string& run_dir) {
  const fs::path dir = fs::path(run_dir) / "tensorboard";
  std::error_code ec;
  fs::remove_all(dir, ec);
  TensorBoardWriter w(dir.string());
  std::ifstream f(fs::path(run_dir) / "metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) w.log(j);
  }
  return w;
}

}  // namespace lathe
