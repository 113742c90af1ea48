// A file written in pieces that appears under its name only when complete: bytes go to
// <path>.tmp, which commit() fsyncs and renames over <path>. Destroyed (or failing) before
// commit(), it removes the .tmp file, so a full disk or a crash never leaves half a file
// under the final name. Errors are lathe::Error naming <path>, with the advice for a full
// disk.
#pragma once
#include <cstddef>
#include <string>

namespace lathe {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write_zeros(size_t bytes);
  size_t written() const { return written_; }
  void commit();

 private:
  [[noreturn]] void abandon(const char* step, int err);
  std::string path_, tmp_;
  int fd_ = -1;
  size_t written_ = 0;
};

}  // namespace lathe
