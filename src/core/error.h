// Errors with context. Every failure a user can cause ends in a lathe::Error whose
// message names the file, line, key or tensor involved and says what to do.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace lathe {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... Parts>
std::string str_cat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}

template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(str_cat(std::forward<Parts>(parts)...));
}

}  // namespace lathe

// Checks a condition that user input can break; the message says what was expected.
#define LATHE_CHECK(cond, ...)          \
  do {                                  \
    if (!(cond)) ::lathe::fail(__VA_ARGS__); \
  } while (0)

// Checks an internal invariant; failing means a bug in lathe, so it names file and line.
#define LATHE_ASSERT(cond)                                                          \
  do {                                                                              \
    if (!(cond))                                                                    \
      ::lathe::fail("internal error at ", __FILE__, ":", __LINE__, ": ", #cond);    \
  } while (0)
