// The one way lathe includes nlohmann/json. Every file includes this header, never
// <nlohmann/json.hpp> itself, so all of them see the same JSON_ASSERT.
//
// nlohmann guards a few lookups only with JSON_ASSERT, which is assert() and so compiled
// out of release builds: a const operator[] of a key the object lacks then dereferences
// the map's end() and reads freed or foreign memory (the fuzzer found one such read in
// the tokenizer.json loader). Here the check stays in every build and throws, so a
// lookup that lathe forgot to guard fails as an error instead of undefined behaviour.
// The cost is a compare per guarded access, next to a map lookup or an allocation.
#pragma once

#if defined(INCLUDE_NLOHMANN_JSON_HPP_) && !defined(LATHE_JSON_ASSERT)
#error "<nlohmann/json.hpp> was included before core/json.h; include core/json.h instead"
#endif

#include <stdexcept>
#include <string>

namespace lathe {

// An unguarded JSON lookup reached a value that is not there: a bug in lathe's reading of
// a document (the document itself may be malformed, but lathe should have said so).
struct JsonAccessBug : std::logic_error {
  using std::logic_error::logic_error;
};

[[noreturn]] inline void json_assert_failed(const char* condition, const char* file, int line) {
  throw JsonAccessBug(std::string("internal error: an unchecked JSON lookup failed (") + condition +
                      " at " + file + ":" + std::to_string(line) +
                      "); the input lacks a key or element lathe expected. Please report "
                      "this with the file that caused it.");
}

}  // namespace lathe

#define LATHE_JSON_ASSERT 1
#define JSON_ASSERT(x) ((x) ? void(0) : ::lathe::json_assert_failed(#x, __FILE__, __LINE__))

#include <nlohmann/json.hpp>
