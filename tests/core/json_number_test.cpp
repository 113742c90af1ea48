// json_integer: the guard between damaged JSON and nlohmann's unchecked numeric casts.
#include "core/json_number.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

using nlohmann::json;

TEST(JsonNumber, IntegersInRangeComeThrough) {
  EXPECT_EQ(json_integer<int64_t>(json(-5)), -5);
  EXPECT_EQ(json_integer<int32_t>(json(2147483647)), 2147483647);
  EXPECT_EQ(json_integer<uint64_t>(json::parse("18446744073709551615")), UINT64_MAX);
  EXPECT_EQ(json_integer<int64_t>(json::parse("-9223372036854775808")), INT64_MIN);
}

TEST(JsonNumber, OutOfRangeAndNonIntegersAreRefused) {
  // The inputs the fuzz targets found: floats far outside any integer type.
  EXPECT_FALSE(json_integer<uint64_t>(json::parse("4.11111e+91")));
  EXPECT_FALSE(json_integer<int64_t>(json::parse("9.22337e+20")));
  EXPECT_FALSE(json_integer<int64_t>(json(8.0)));  // a float, even a whole one
  EXPECT_FALSE(json_integer<int32_t>(json(3000000000LL)));
  EXPECT_FALSE(json_integer<int32_t>(json(-3000000000LL)));
  EXPECT_FALSE(json_integer<uint64_t>(json(-1)));
  EXPECT_FALSE(json_integer<int64_t>(json::parse("18446744073709551615")));
  EXPECT_FALSE(json_integer<int64_t>(json("7")));
  EXPECT_FALSE(json_integer<int64_t>(json()));
  EXPECT_FALSE(json_integer<int64_t>(json(true)));
}

TEST(JsonNumber, TheErrorNamesWhereAndTheRange) {
  try {
    require_json_integer<int32_t>(json(1e12), "tokenizer.json: added_tokens id");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tokenizer.json: added_tokens id must be an integer from -2147483648 to "
                     "2147483647, got 1000000000000.0"),
              std::string::npos)
        << m;
  }
}

}  // namespace
}  // namespace lathe
