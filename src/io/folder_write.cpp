#include "io/folder_write.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace lathe {

void copy_file_into(const fs::path& src, const fs::path& dst) {
  // Read whole and written through write_file_atomic rather than fs::copy_file: libstdc++'s
  // copy reports a full disk as EIO, which would hide the advice. The files copied this way
  // (tokenizer and generation configs) are at most ~10 MB.
  std::ifstream in(src, std::ios::binary);
  LATHE_CHECK(in, "cannot read ", src.string(), ": ", std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  LATHE_CHECK(!in.bad(), "cannot read ", src.string(), ": ", std::strerror(errno));
  write_file_atomic(dst.string(), bytes);
}

void write_folder_atomic(const std::string& dir, const std::function<void(const fs::path&)>& fill) {
  const fs::path out(dir), tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  LATHE_CHECK(!ec, "cannot create ", tmp.string(), ": ", ec.message());
  try {
    fill(tmp);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    fail("cannot write ", dir, ": ", e.what(),
         e.code().value() == ENOSPC ? " (the disk is full; free space and retry)" : "");
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  fs::remove_all(out, ec);
  fs::rename(tmp, out, ec);
  LATHE_CHECK(!ec, "cannot rename ", tmp.string(), " to ", dir, ": ", ec.message());
}

}  // namespace lathe
