#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace lathe {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot write ", path_, ": cannot create ", tmp_, ": ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::abandon(const char* step, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  fail("cannot write ", path_, ": ", step, " failed: ", std::strerror(err),
       err == ENOSPC ? " (the disk is full; free space and retry)" : "");
}

void AtomicFile::write(const void* data, size_t bytes) {
  LATHE_ASSERT(fd_ >= 0);
  const auto* p = static_cast<const uint8_t*>(data);
  while (bytes > 0) {
    const ssize_t w = ::write(fd_, p, std::min<size_t>(bytes, size_t(1) << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) abandon("write", w < 0 ? errno : EIO);
    p += w;
    bytes -= size_t(w);
    written_ += size_t(w);
  }
}

void AtomicFile::write_zeros(size_t bytes) {
  static const uint8_t zeros[64] = {};
  while (bytes > 0) {
    const size_t n = std::min(bytes, sizeof(zeros));
    write(zeros, n);
    bytes -= n;
  }
}

void AtomicFile::commit() {
  LATHE_ASSERT(fd_ >= 0);
  if (::fsync(fd_) != 0) abandon("fsync", errno);
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    fail("cannot write ", path_, ": close failed: ", std::strerror(err),
         err == ENOSPC ? " (the disk is full; free space and retry)" : "");
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    fail("cannot write ", path_, ": rename failed: ", std::strerror(err));
  }
  // Makes the rename itself durable; best effort, since some filesystems refuse it.
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace lathe
