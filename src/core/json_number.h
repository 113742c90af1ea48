// Integers read from JSON that a user, a download or a crash may have damaged.
//
// nlohmann's get<int64_t>() turns a float such as 4e91 into an integer with a plain cast,
// which is undefined behaviour, and get<int32_t>() of 3000000000 silently wraps. The fuzz
// targets found both in checkpoint, PEFT and tokenizer files. json_integer<Int> accepts only
// a JSON integer that fits Int, so every caller can name the key that was wrong.
#pragma once
#include <cstdint>
#include <limits>
#include <optional>

#include "core/error.h"
#include "core/json.h"

namespace lathe {

template <class Int>
std::optional<Int> json_integer(const nlohmann::json& v) {
  static_assert(std::numeric_limits<Int>::is_integer);
  using Limits = std::numeric_limits<Int>;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(Limits::max())) return std::nullopt;
    return Int(u);
  }
  if (v.is_number_integer()) {  // signed and negative (nlohmann stores non-negatives unsigned)
    const int64_t s = v.get<int64_t>();
    if constexpr (!Limits::is_signed) {
      return std::nullopt;
    } else {
      if (s < int64_t(Limits::min()) || s > int64_t(Limits::max())) return std::nullopt;
      return Int(s);
    }
  }
  return std::nullopt;
}

// The integer at v, or a lathe::Error naming where it came from and what range it needed.
template <class Int>
Int require_json_integer(const nlohmann::json& v, const std::string& where) {
  if (auto x = json_integer<Int>(v)) return *x;
  fail(where, " must be an integer from ", +std::numeric_limits<Int>::min(), " to ",
       +std::numeric_limits<Int>::max(), ", got ", v.dump());
}

// A JSON number as a double; nullopt for anything else (a string, null, an object).
inline std::optional<double> json_double(const nlohmann::json& v) {
  if (!v.is_number()) return std::nullopt;
  return v.get<double>();
}

}  // namespace lathe
