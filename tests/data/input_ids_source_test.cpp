#include "data/input_ids_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kVocab = 32000;

class InputIdsSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / str_cat("lathe_ids_test_", getpid(), "_", info->name());
    fs::create_directories(dir_);
    path_ = (dir_ / "train.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& text, const std::string& name = "train.jsonl") {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // The message for reading `text` from path_, which must fail.
  std::string error_for(const std::string& text) {
    write(text);
    try {
      read_input_ids_jsonl(path_, kVocab);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected a lathe::Error for:\n" << text;
    return "";
  }

  fs::path dir_;
  std::string path_;  // where write() puts its file by default
};

using Ids = std::vector<int32_t>;

TEST_F(InputIdsSourceTest, ReadsRows) {
  auto rows = read_input_ids_jsonl(
      write("{\"input_ids\": [1, 2, 3]}\n{\"input_ids\":[31999]}\n{\"input_ids\": [0, 5]}"),
      kVocab);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].input_ids, (Ids{1, 2, 3}));
  EXPECT_TRUE(rows[0].labels.empty());
  EXPECT_EQ(rows[1].input_ids, (Ids{31999}));
  EXPECT_EQ(rows[2].input_ids, (Ids{0, 5}));
}

TEST_F(InputIdsSourceTest, ReadsLabelsInAnyKeyOrder) {
  auto rows = read_input_ids_jsonl(write("{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, 3]}\n"
                                         "{\"labels\": [-100, -100], \"input_ids\": [7, 8]}\n"),
                                   kVocab);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].labels, (Ids{-100, 2, 3}));
  EXPECT_EQ(rows[1].input_ids, (Ids{7, 8}));
  EXPECT_EQ(rows[1].labels, (Ids{-100, -100}));
}

TEST_F(InputIdsSourceTest, IgnoresOtherKeys) {
  auto rows = read_input_ids_jsonl(
      write(R"({"text": "hi", "meta": {"ids": [1.5, {"x": [null]}]}, "input_ids": [4]})"
            "\n"),
      kVocab);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].input_ids, (Ids{4}));
}

TEST_F(InputIdsSourceTest, SkipsBlankLinesButCountsThem) {
  auto rows = read_input_ids_jsonl(write("\n{\"input_ids\": [1]}\n\n   \n{\"input_ids\": [2]}\n\n"),
                                   kVocab);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].input_ids, (Ids{2}));
  std::string msg = error_for("{\"input_ids\": [1]}\n\n\n{\"input_ids\": [-1]}\n");
  EXPECT_NE(msg.find(path_ + ":4:"), std::string::npos) << msg;
}

TEST_F(InputIdsSourceTest, ToleratesCrlf) {
  auto rows = read_input_ids_jsonl(
      write("{\"input_ids\": [1, 2]}\r\n\r\n{\"input_ids\": [3], \"labels\": [-100]}\r\n"), kVocab);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].input_ids, (Ids{1, 2}));
  EXPECT_EQ(rows[1].labels, (Ids{-100}));
  std::string msg = error_for("{\"input_ids\": [1]}\r\n{\"input_ids\": [1,]}\r\n");
  EXPECT_NE(msg.find(path_ + ":2:"), std::string::npos) << msg;
}

TEST_F(InputIdsSourceTest, IdOutsideVocabulary) {
  std::string text;
  for (int i = 0; i < 6; ++i) text += "{\"input_ids\": [1]}\n";
  text += "{\"input_ids\": [1, 2, 3, 40000]}\n";
  EXPECT_EQ(error_for(text),
            path_ + ":7: input_ids[3] = 40000 is outside the vocabulary (size 32000)");
  EXPECT_NE(error_for("{\"input_ids\": [32000]}").find("input_ids[0] = 32000"), std::string::npos);
  EXPECT_NE(error_for("{\"input_ids\": [-100]}").find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(error_for("{\"input_ids\": [99999999999999999999]}").find("input_ids[0]"),
            std::string::npos);
}

TEST_F(InputIdsSourceTest, LabelOutsideVocabulary) {
  std::string msg = error_for("{\"input_ids\": [1, 2], \"labels\": [-100, 32000]}\n");
  EXPECT_NE(msg.find(path_ + ":1: labels[1] = 32000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("-100"), std::string::npos) << msg;
  msg = error_for("{\"input_ids\": [1, 2], \"labels\": [-1, 2]}\n");
  EXPECT_NE(msg.find("labels[0] = -1"), std::string::npos) << msg;
}

TEST_F(InputIdsSourceTest, LabelsLengthMismatch) {
  std::string msg = error_for("{\"input_ids\": [1]}\n{\"input_ids\": [1, 2], \"labels\": [2]}\n");
  EXPECT_NE(msg.find(path_ + ":2:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"labels\" has 1 entries but \"input_ids\" has 2"), std::string::npos) << msg;
}

TEST_F(InputIdsSourceTest, MalformedJsonNamesLineAndColumn) {
  std::string msg = error_for("{\"input_ids\": [1]}\n{\"input_ids\": [1, 2}\n");
  EXPECT_NE(msg.find(path_ + ":2:20: invalid JSON"), std::string::npos) << msg;
  msg = error_for("{\"input_ids\": [1]} x\n");
  EXPECT_NE(msg.find(path_ + ":1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;
}

TEST_F(InputIdsSourceTest, NotAnObject) {
  std::string msg = error_for("[1, 2, 3]\n");
  EXPECT_NE(msg.find(path_ + ":1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected a JSON object"), std::string::npos) << msg;
  EXPECT_NE(error_for("42\n").find("expected a JSON object per line, got a number"),
            std::string::npos);
}

TEST_F(InputIdsSourceTest, MissingOrEmptyInputIds) {
  std::string msg = error_for("{\"input_ids\": [1]}\n{\"labels\": [1]}\n");
  EXPECT_NE(msg.find(path_ + ":2: missing \"input_ids\""), std::string::npos) << msg;
  msg = error_for("{\"input_ids\": []}\n");
  EXPECT_NE(msg.find(path_ + ":1: \"input_ids\" is empty"), std::string::npos) << msg;
}

TEST_F(InputIdsSourceTest, WrongTypes) {
  std::string msg = error_for("{\"input_ids\": \"1 2 3\"}\n");
  EXPECT_NE(msg.find(path_ + ":1: \"input_ids\" must be an array of integers, got a string"),
            std::string::npos)
      << msg;
  msg = error_for("{\"input_ids\": [1, 2.5]}\n");
  EXPECT_NE(msg.find("input_ids[1] = 2.5 is not an integer"), std::string::npos) << msg;
  msg = error_for("{\"input_ids\": [1, \"2\"]}\n");
  EXPECT_NE(msg.find("input_ids[1] is a string, expected an integer"), std::string::npos) << msg;
  msg = error_for("{\"input_ids\": [[1]]}\n");
  EXPECT_NE(msg.find("input_ids[0] is an array"), std::string::npos) << msg;
  msg = error_for("{\"input_ids\": [1], \"labels\": {\"a\": 1}}\n");
  EXPECT_NE(msg.find("\"labels\" must be an array of integers, got an object"), std::string::npos)
      << msg;
  msg = error_for("{\"input_ids\": [1], \"input_ids\": [2]}\n");
  EXPECT_NE(msg.find("appears twice"), std::string::npos) << msg;
}

TEST_F(InputIdsSourceTest, EmptyFile) {
  EXPECT_EQ(error_for(""), path_ + ": no rows; expected one JSON object per line");
  EXPECT_NE(error_for("\n  \r\n\n").find(": no rows"), std::string::npos);
}

TEST_F(InputIdsSourceTest, MissingFile) {
  std::string path = (dir_ / "absent.jsonl").string();
  try {
    read_input_ids_jsonl(path, kVocab);
    ADD_FAILURE() << "expected a lathe::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": cannot open"), std::string::npos) << e.what();
  }
}

TEST_F(InputIdsSourceTest, ManyRows) {
  std::string text;
  for (int r = 0; r < 2000; ++r) {
    text += "{\"input_ids\": [";
    for (int i = 0; i < 100; ++i) text += str_cat(i ? ", " : "", (r * 100 + i) % kVocab);
    text += "]}\n";
  }
  auto rows = read_input_ids_jsonl(write(text), kVocab);
  ASSERT_EQ(rows.size(), 2000u);
  EXPECT_EQ(rows[1999].input_ids.size(), 100u);
  EXPECT_EQ(rows[1999].input_ids[99], (1999 * 100 + 99) % kVocab);
}

}  // namespace
}  // namespace lathe
