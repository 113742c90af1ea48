#include "data/token_cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace lathe {
namespace {

std::string scratch(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("lathe_cache_" + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

std::vector<TokenRow> sample_rows() {
  std::vector<TokenRow> rows(3);
  rows[0].input_ids = {1, 2, 3};
  rows[1].input_ids = {4, 5, 6, 7};
  rows[1].labels = {-100, -100, 6, 7};
  rows[2].input_ids = {8};
  return rows;
}

TEST(TokenCache, RoundTripKeepsIdsAndLabels) {
  const std::string path = token_cache_path(scratch("rt"), 42);
  token_cache_write(path, 42, sample_rows());
  const auto got = token_cache_read(path, 42);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[1].input_ids, sample_rows()[1].input_ids);
  EXPECT_EQ((*got)[1].labels, sample_rows()[1].labels);
  EXPECT_TRUE((*got)[0].labels.empty());  // labels equal to the ids are not duplicated
}

TEST(TokenCache, AnotherKeyOrADamagedFileIsAMiss) {
  const std::string path = token_cache_path(scratch("miss"), 7);
  EXPECT_FALSE(token_cache_read(path, 7).has_value());  // absent
  token_cache_write(path, 7, sample_rows());
  EXPECT_FALSE(token_cache_read(path, 8).has_value());  // settings changed
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  EXPECT_FALSE(token_cache_read(path, 7).has_value());  // truncated
}

TEST(TokenCache, KeyChangesWithContent) {
  const std::string dir = scratch("key");
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/a") << "hello";
  const uint64_t k1 = hash_file(dir + "/a", kHashSeed);
  std::ofstream(dir + "/a") << "hellp";
  EXPECT_NE(hash_file(dir + "/a", kHashSeed), k1);
  EXPECT_NE(hash_text("ab", hash_text("c", kHashSeed)), hash_text("a", hash_text("bc", kHashSeed)));
}

}  // namespace
}  // namespace lathe
