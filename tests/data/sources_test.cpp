// Reading dataset files: jsonl, json (arrays and PubMedQA's id-keyed object), csv (RFC 4180
// quoting, as SAMSum ships it), plain text, UTF-8 validation, and the errors for each.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/formats.h"

#ifndef LATHE_SOURCE_DIR
#define LATHE_SOURCE_DIR "."
#endif

namespace lathe {
namespace {

namespace fs = std::filesystem;

// Whether `text` contains `part`, printing both when not.
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << part << "\" not found in: " << text;
}

std::string fixture(const std::string& name) {
  return std::string(LATHE_SOURCE_DIR) + "/tests/data/fixtures/" + name;
}

class SourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / str_cat("lathe_sources_test_", getpid(), "_", info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // The message of the lathe::Error that reading `text` as `name` throws.
  std::string read_error(const std::string& name, const std::string& text,
                         std::string_view format = "gsm8k") {
    std::string path = write(name, text);
    try {
      read_rows(path, format);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected a lathe::Error reading " << name;
    return "";
  }

  // The Row::error of the only bad row, which must exist.
  std::string row_error(const std::string& name, const std::string& text,
                        std::string_view format = "gsm8k") {
    for (const Row& row : read_rows(write(name, text), format))
      if (!row.error.empty()) return row.error;
    ADD_FAILURE() << "expected a bad row in " << name;
    return "";
  }

  fs::path dir_;
};

TEST(Utf8Test, AcceptsValidAndFindsTheFirstBadByte) {
  EXPECT_EQ(find_invalid_utf8(""), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("plain ascii\n"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x91\x8D"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("\xF4\x8F\xBF\xBF"), std::string_view::npos);  // U+10FFFF
  EXPECT_EQ(find_invalid_utf8("caf\xE9!"), 3u);                              // Latin-1 é
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);            // lone continuation byte
  EXPECT_EQ(find_invalid_utf8("a\xC0\x80"), 1u);         // overlong NUL
  EXPECT_EQ(find_invalid_utf8("a\xE0\x80\xAF"), 1u);     // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);      // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\xE2\x82"), 2u);        // truncated sequence
  EXPECT_EQ(find_invalid_utf8("\xFF"), 0u);
}

TEST_F(SourcesTest, JsonlRowsKeepTheirLineNumbers) {
  auto rows = read_rows(write("a.jsonl", "{\"q\": \"one\"}\n\n  \n{\"q\": \"two\"}\r\n{\"q\": 3}"),
                        "gsm8k");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].line, 1);
  EXPECT_EQ(rows[1].line, 4);
  EXPECT_EQ(rows[2].line, 5);
  EXPECT_EQ(rows[1].fields["q"], "two");
  for (const Row& r : rows) EXPECT_EQ(r.error, "");
}

TEST_F(SourcesTest, JsonlBadRowsNameFileLineAndColumn) {
  std::string e = row_error("bad.jsonl", "{\"q\": 1}\n{\"q\": 1,}\n");
  EXPECT_TRUE(Contains(e, "bad.jsonl:2:9: invalid JSON"));
  e = row_error("arr.jsonl", "{\"q\": 1}\n[1, 2]\n");
  EXPECT_TRUE(Contains(e, "arr.jsonl:2: expected a JSON object per line, got array"));
}

TEST_F(SourcesTest, JsonlInvalidUtf8NamesLineColumnAndByteOffset) {
  // Line 2 starts at byte 9; the Latin-1 byte is its 11th byte.
  std::string e = row_error("latin1.jsonl", "{\"q\": 1}\n{\"q\": \"caf\xE9\"}\n");
  EXPECT_TRUE(Contains(e, "latin1.jsonl:2:11: invalid UTF-8 (byte 0xE9 at byte offset 19)"));
}

TEST_F(SourcesTest, JsonArrayRowsKnowTheirLines) {
  auto rows = read_rows(fixture("alpaca_rows.json"), "alpaca");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_EQ(rows[1].line, 7);
  EXPECT_EQ(rows[2].line, 12);
  EXPECT_EQ(rows[1].fields["output"], "Le chat dort sur le canap\xC3\xA9.");
}

TEST_F(SourcesTest, JsonObjectOfRowsIsThePubmedqaLayout) {
  auto rows = read_rows(fixture("pubmedqa_ori_pqal_head.json"), "pubmedqa");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_EQ(rows[1].line, 25);
  EXPECT_EQ(rows[2].line, 64);
  EXPECT_EQ(rows[0].fields["id"], "21645374");  // the key, kept as a field
  EXPECT_EQ(rows[1].fields["final_decision"], "no");
  EXPECT_EQ(rows[2].fields["CONTEXTS"].size(), 2u);
  // \u escapes decode to UTF-8: "(\u0394\u03a8m)" in the first entry.
  EXPECT_TRUE(Contains(rows[0].fields["CONTEXTS"][1].get<std::string>(), "(\xCE\x94\xCE\xA8m)"));
}

TEST_F(SourcesTest, JsonErrorsNameLineAndColumn) {
  EXPECT_TRUE(Contains(read_error("bad.json", "[\n  {\"a\": 1},\n  {\"a\": 2,,}\n]"),
                       "bad.json:3:11: invalid JSON"));
  EXPECT_TRUE(Contains(read_error("str.json", "\"text\""),
                       "str.json: expected a JSON array of row objects"));
  EXPECT_TRUE(Contains(read_error("latin1.json", "[\n {\"a\": \"\xE9\"}]"),
                       "latin1.json:2:9: invalid UTF-8 (byte 0xE9 at byte offset 10)"));
  EXPECT_TRUE(Contains(row_error("elem.json", "[{\"a\": 1},\n 7]"),
                       "elem.json:2: array element is number, expected a row object"));
  EXPECT_TRUE(Contains(row_error("keyed.json", "{\"1\": {\"a\": 1},\n \"2\": \"x\"}"),
                       "keyed.json:2: entry \"2\" is string"));
}

// As Hugging Face datasets reads them: JSON Lines in a .json file (the KubeRay PubMedQA
// recipe's dataset.json), a JSON array in a .jsonl file, told apart by content.
TEST_F(SourcesTest, JsonLayoutComesFromTheContentNotTheExtension) {
  std::ifstream f(fixture("pubmedqa_flat.jsonl"));
  const std::string flat((std::istreambuf_iterator<char>(f)), {});
  auto rows = read_rows(write("dataset.json", flat), "pubmedqa");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].line, 2);
  EXPECT_EQ(rows[1].fields["answer"], "yes");
  for (const Row& r : rows) EXPECT_EQ(r.error, "");

  rows = read_rows(write("array.jsonl", "[\n {\"q\": 1},\n {\"q\": 2}\n]\n"), "gsm8k");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].line, 3);

  rows = read_rows(write("one.json", "{\"q\": \"only\"}\n"), "gsm8k");  // a single row
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields["q"], "only");

  std::ifstream g(fixture("pubmedqa_ori_pqal_head.json"));
  const std::string keyed((std::istreambuf_iterator<char>(g)), {});
  EXPECT_EQ(read_rows(write("ori_pqal.jsonl", keyed), "pubmedqa").size(), 3u);

  // JSON Lines errors still name the file, line and column.
  EXPECT_TRUE(Contains(row_error("lines.json", "{\"q\": 1}\n{\"q\": 1,}\n"),
                       "lines.json:2:9: invalid JSON"));
}

TEST_F(SourcesTest, CsvSamsumRowsWithQuotedMultiLineFields) {
  auto rows = read_rows(fixture("samsum_validation_rows.csv"), "samsum");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_EQ(rows[1].line, 5);
  EXPECT_EQ(rows[2].line, 8);
  EXPECT_EQ(rows[3].line, 12);
  EXPECT_EQ(rows[0].fields["id"], "13817874");
  EXPECT_EQ(rows[0].fields["dialogue"],
            "Aiden: Are you free now?\nSilvia: 5 mins please\nAiden: k");
  EXPECT_EQ(rows[0].fields["summary"], "Silvia will be free in 5 minutes.");
  EXPECT_EQ(rows[1].fields["dialogue"],
            "Ramzi: Mom is calling for supper\nJannette: Ok Im coming \nRamzi: \xF0\x9F\x91\x8D");
  EXPECT_EQ(rows[2].fields["dialogue"],
            "Brian: let me send you the voting link, please vote for sam\nMichelle: okay then\n"
            "Brian: \"m.victoriacontest.com/ vote for Bianca\"\nMichelle: Okay then.");
  EXPECT_EQ(rows[2].fields["summary"], "Brian sent Michelle a link so she can vote for Sam. ");
  EXPECT_EQ(rows[3].fields["summary"],
            "\"Sala del Capitolo\" Tom is looking for is in the main building.");
}

TEST_F(SourcesTest, CsvQuotingEdgeCases) {
  auto rows = read_rows(write("q.csv",
                              "\xEF\xBB\xBFid,text,note\r\n"   // BOM, CRLF records
                              "1,\"a, b\",\"\"\r\n"            // quoted comma, empty quoted
                              "2,,\"line1\r\nline2\"\r\n"      // empty unquoted, CRLF inside
                              "\r\n"                           // blank line: skipped
                              "3,say \"hi\",\"x\"\"y\"\"\"\n"  // bare quotes kept, "" escapes
                              "4,last,no newline"),
                        "gsm8k");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].fields, (nlohmann::json{{"id", "1"}, {"text", "a, b"}, {"note", ""}}));
  EXPECT_EQ(rows[1].fields,
            (nlohmann::json{{"id", "2"}, {"text", ""}, {"note", "line1\r\nline2"}}));
  EXPECT_EQ(rows[2].fields["text"], "say \"hi\"");
  EXPECT_EQ(rows[2].fields["note"], "x\"y\"");
  EXPECT_EQ(rows[2].line, 6);
  EXPECT_EQ(rows[3].fields["note"], "no newline");
  EXPECT_EQ(rows[3].line, 7);
}

TEST_F(SourcesTest, CsvErrorsNameLineAndColumn) {
  EXPECT_TRUE(Contains(read_error("open.csv", "id,text\n1,ok\n2,\"never closed\n3,x\n"),
                       "open.csv:3:3: quoted field is never closed"));
  EXPECT_TRUE(Contains(row_error("after.csv", "id,text\n1,\"quoted\"tail\n"),
                       "after.csv:2:11: unexpected 't' after a closing quote"));
  EXPECT_TRUE(Contains(row_error("count.csv", "id,text\n1,a\n2,a,b\n"),
                       "count.csv:3: row has 3 fields but the header has 2 (id,text)"));
  EXPECT_TRUE(Contains(read_error("dup.csv", "id,text,id\n1,a,b\n"),
                       "dup.csv:1: column \"id\" appears twice in the header"));
  EXPECT_TRUE(Contains(read_error("header.csv", "id,text\n"),
                       "header.csv: no rows; expected data rows after the header"));
  EXPECT_TRUE(Contains(row_error("latin1.csv", "id,text\n1,ok\n2,\"multi\nline caf\xE9\"\n"),
                       "latin1.csv:4:9: invalid UTF-8 (byte 0xE9 at byte offset 30)"));
}

TEST_F(SourcesTest, TextFilesAreBlankLineSeparatedDocuments) {
  auto rows =
      read_rows(write("corpus.txt", "\nFirst doc,\r\nline two.\n\n\n  \nSecond doc.\n"), "text");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields["text"], "First doc,\nline two.");
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_EQ(rows[1].fields["text"], "Second doc.");
  EXPECT_EQ(rows[1].line, 7);
  EXPECT_TRUE(Contains(row_error("bad.txt", "ok\n\nbad \xC3(\n", "text"),
                       "bad.txt:3:5: invalid UTF-8 (byte 0xC3 at byte offset 8)"));
}

TEST_F(SourcesTest, EmptyFilesAndUnknownTypesAreErrors) {
  EXPECT_TRUE(Contains(read_error("empty.jsonl", "\n  \n"),
                       "empty.jsonl: no rows; expected one JSON object per line"));
  EXPECT_TRUE(Contains(read_error("empty.json", "[]"), "empty.json: no rows"));
  EXPECT_TRUE(Contains(read_error("empty.txt", "\n\n", "text"), "empty.txt: no rows"));
  EXPECT_TRUE(Contains(read_error("data.parquet", "PAR1"),
                       "data.parquet: cannot tell the file type from the extension \".parquet\""));
  EXPECT_TRUE(Contains(read_error("missing/none.jsonl", ""), "none.jsonl: cannot open"));
}

}  // namespace
}  // namespace lathe
