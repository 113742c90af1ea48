// Shared by the fuzz targets: running one input through a parser, a scratch folder for the
// APIs that read files, and splitting one input into parts.
#pragma once
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/json.h"

namespace lathe::fuzz {

// Runs one parse. Bad input must end in an exception: lathe::Error from lathe's checks, or
// a third-party parser's own (nlohmann, yaml-cpp) that lathe lets through. Three exceptions
// mean lathe trusted the input where it should have checked, so they abort and the fuzzer
// keeps the input: bad_alloc (an allocation too large for the process), length_error (a
// string or vector asked for more than max_size()) and JsonAccessBug (a JSON lookup of a
// key or element that is not there, see core/json.h).
template <class F>
void run_guarded(F&& parse) {
  try {
    parse();
  } catch (const std::bad_alloc& e) {
    std::fprintf(stderr, "unchecked allocation: %s\n", e.what());
    std::abort();
  } catch (const std::length_error& e) {
    std::fprintf(stderr, "unchecked size: %s\n", e.what());
    std::abort();
  } catch (const lathe::JsonAccessBug& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::abort();
  } catch (const std::exception& e) {
    // LATHE_FUZZ_VERBOSE=1 shows why each input was rejected, e.g. to check that a seed
    // file parses (a seed that fails early covers little).
    static const bool verbose = std::getenv("LATHE_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "rejected: %s\n", e.what());
  }
}

// A folder of this process's own under $TMPDIR, removed at exit (libFuzzer ends with
// exit() after -max_total_time or -runs). After a crash it is left for inspection.
inline const std::string& scratch_dir() {
  // Never freed: the exit handler below runs after static destructors would have.
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto* d = new std::string(std::string(tmp && *tmp ? tmp : "/tmp") + "/lathe-fuzz-XXXXXX");
    if (!::mkdtemp(d->data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return *dir;
}

inline void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

// Splits at the first NUL byte: {before, after}; `after` is empty without one. Text formats
// (JSON, YAML) cannot hold a raw NUL, so a target reads a second input after it.
inline std::pair<std::string_view, std::string_view> split_at_nul(std::string_view s) {
  size_t nul = s.find('\0');
  if (nul == std::string_view::npos) return {s, {}};
  return {s.substr(0, nul), s.substr(nul + 1)};
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace lathe::fuzz
