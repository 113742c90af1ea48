#include "io/folder_write.h"

#include <cerrno>

#include "core/error.h"

namespace fs = std::filesystem;

namespace lathe {

void copy_file_into(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  if (!ec) return;
  fs::remove(dst, ec);  // never leave a partial copy
  fail("cannot write ", dst.string(), " (a copy of ", src.string(), "): ", ec.message(),
       ec.value() == ENOSPC ? " (the disk is full; free space and retry)" : "");
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
