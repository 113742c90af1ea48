// CRC-32C as TFRecord frames TensorBoard event files: the check values of RFC 3720
// (iSCSI), appendix B.4, and the standard "123456789" check value.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "metrics/tensorboard.h"

namespace lathe {
namespace {

TEST(Crc32c, MatchesTheRfc3720Vectors) {
  std::vector<uint8_t> bytes(32, 0x00);
  EXPECT_EQ(crc32c(bytes.data(), bytes.size()), 0x8A9136AAu);
  bytes.assign(32, 0xFF);
  EXPECT_EQ(crc32c(bytes.data(), bytes.size()), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) bytes[size_t(i)] = uint8_t(i);
  EXPECT_EQ(crc32c(bytes.data(), bytes.size()), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) bytes[size_t(i)] = uint8_t(31 - i);
  EXPECT_EQ(crc32c(bytes.data(), bytes.size()), 0x113FDB5Cu);
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), 0xE3069283u);
}

}  // namespace
}  // namespace lathe
