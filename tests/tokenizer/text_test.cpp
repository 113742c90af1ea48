// The text layer: UTF-8, Unicode classes, GPT-2's byte alphabet, the hand-written split
// patterns (case by case, each alternative of the regex), and the BPE merge loop's two
// strategies against a naive reference.
#include "tokenizer/text.h"

#include <gtest/gtest.h>

#include <random>

#include "tokenizer/bpe.h"

namespace lathe::tok {
namespace {

std::vector<std::string> split(std::string_view text, SplitRegex re = SplitRegex::kLlama3,
                               int max_digits = 3) {
  SplitScratch s;
  std::vector<uint32_t> ends;
  split_pretokens(text, re, max_digits, s, ends);
  std::vector<std::string> out;
  size_t start = 0;
  for (uint32_t e : ends) {
    out.emplace_back(text.substr(start, e - start));
    start = e;
  }
  return out;
}

using V = std::vector<std::string>;

TEST(TokenizerText, CharClasses) {
  EXPECT_EQ(char_class('a'), kLetter);
  EXPECT_EQ(char_class('Z'), kLetter);
  EXPECT_EQ(char_class('7'), kNumber);
  EXPECT_EQ(char_class(0xBD), kNumber);    // ½ (No)
  EXPECT_EQ(char_class(0x663), kNumber);   // Arabic-Indic 3 (Nd)
  EXPECT_EQ(char_class(0x2167), kNumber);  // Roman numeral eight (Nl)
  EXPECT_EQ(char_class(0x6F22), kLetter);  // 漢 (Lo)
  EXPECT_EQ(char_class(0x17F), kLetter);   // ſ
  EXPECT_EQ(char_class(0x1F600), kOther);  // 😀
  EXPECT_EQ(char_class(0x301), kOther);    // combining acute (Mn) is not \p{L}
  EXPECT_EQ(char_class(0x3000), kSpace);   // ideographic space
  EXPECT_EQ(char_class(0x85), kSpace);     // NEL
  EXPECT_EQ(char_class(0x2028), kSpace);
  EXPECT_EQ(char_class(0x1C), kOther);    // Python's isspace() says yes; White_Space no
  EXPECT_EQ(char_class(0x200B), kOther);  // zero width space is not White_Space
  EXPECT_EQ(char_class(0x10FFFF), kOther);
  EXPECT_EQ(char_class(0x20000), kLetter);  // CJK extension B
}

TEST(TokenizerText, Utf8) {
  EXPECT_TRUE(utf8_valid("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(utf8_valid("\xC3"));                           // truncated
  EXPECT_FALSE(utf8_valid("\xC0\xAF"));                       // overlong
  EXPECT_FALSE(utf8_valid("\xED\xA0\x80"));                   // surrogate
  EXPECT_FALSE(utf8_valid("\xF4\x90\x80\x80"));               // > U+10FFFF
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98z"), "a\xEF\xBF\xBDz");  // one U+FFFD per maximal part
  EXPECT_EQ(utf8_lossy("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  std::string s;
  utf8_append(0x1F600, s);
  EXPECT_EQ(s, "\xF0\x9F\x98\x80");
}

TEST(TokenizerText, ByteLevelAlphabet) {
  const ByteLevelMap& m = byte_level_map();
  EXPECT_EQ(m.encode(" "), "\xC4\xA0");   // Ġ
  EXPECT_EQ(m.encode("\n"), "\xC4\x8A");  // Ċ
  EXPECT_EQ(m.encode("hi!"), "hi!");
  std::string all, back;
  for (int b = 0; b < 256; ++b) all += char(b);
  ASSERT_TRUE(m.decode(m.encode(all), back));
  EXPECT_EQ(back, all);
  EXPECT_FALSE(m.decode("\xE2\x96\x81", back));  // ▁ is not in the alphabet
}

TEST(TokenizerText, Llama3SplitAlternatives) {
  // (?i:'s|'t|'re|'ve|'m|'ll|'d), case-insensitive, including U+017F (folds to s)
  EXPECT_EQ(split("I'm"), (V{"I", "'m"}));
  EXPECT_EQ(split("WE'LL've"), (V{"WE", "'LL", "'ve"}));
  EXPECT_EQ(split("'sam"), (V{"'s", "am"}));
  EXPECT_EQ(split("'\xC5\xBF"), (V{"'\xC5\xBF"}));
  EXPECT_EQ(split("'x"), (V{"'x"}));  // not a contraction: [^\r\n\p{L}\p{N}]?\p{L}+
  // [^\r\n\p{L}\p{N}]?\p{L}+ : one leading non-letter (space, tab, punctuation), not \n
  EXPECT_EQ(split("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split("\tword"), (V{"\tword"}));
  EXPECT_EQ(split("\nword"), (V{"\n", "word"}));
  EXPECT_EQ(split("(foo)"), (V{"(foo", ")"}));
  EXPECT_EQ(split("\xC3\xBC"
                  "ber \xE6\xBC\xA2\xE5\xAD\x97"),
            (V{"\xC3\xBC"
               "ber",
               " \xE6\xBC\xA2\xE5\xAD\x97"}));
  // \p{N}{1,3}
  EXPECT_EQ(split("1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(split("1234567", SplitRegex::kLlama3, 1), (V{"1", "2", "3", "4", "5", "6", "7"}));
  EXPECT_EQ(split("x 42"), (V{"x", " ", "42"}));
  EXPECT_EQ(split("\xC2\xBD"
                  "3"),
            (V{"\xC2\xBD"
               "3"}));  // ½ is a number
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  EXPECT_EQ(split("hi!!!\n\nyo"), (V{"hi", "!!!\n\n", "yo"}));
  EXPECT_EQ(split(" (x"), (V{" (", "x"}));
  EXPECT_EQ(split("a ..."), (V{"a", " ..."}));
  EXPECT_EQ(split("$100"), (V{"$", "100"}));
  // \s*[\r\n]+ : a whitespace run up to its last newline
  EXPECT_EQ(split("a\n\nb"), (V{"a", "\n\n", "b"}));
  EXPECT_EQ(split("a  \n  b"), (V{"a", "  \n", " ", " b"}));
  EXPECT_EQ(split("a \r\n \n\tb"), (V{"a", " \r\n \n", "\tb"}));
  // \s+(?!\S) then \s+
  EXPECT_EQ(split("x   "), (V{"x", "   "}));
  EXPECT_EQ(split("x   y"), (V{"x", "  ", " y"}));
  EXPECT_EQ(split("x \xE3\x80\x80y"), (V{"x", " ", "\xE3\x80\x80y"}));
  EXPECT_EQ(split("  1"), (V{" ", " ", "1"}));  // \s+(?!\S) leaves one, then \s+
  EXPECT_EQ(split(""), V{});
  EXPECT_EQ(split("\xFF"
                  "a"),
            (V{"\xFF"
               "a"}));  // a malformed byte counts as punctuation
}

TEST(TokenizerText, Gpt2Split) {
  const auto g = SplitRegex::kGpt2;
  EXPECT_EQ(split("Hello  world", g), (V{"Hello", " ", " world"}));
  EXPECT_EQ(split(" 12345 x", g), (V{" 12345", " x"}));
  EXPECT_EQ(split("I'M i'm", g), (V{"I", "'", "M", " i", "'m"}));  // case sensitive
  EXPECT_EQ(split("a\n\nb", g), (V{"a", "\n", "\n", "b"}));
  EXPECT_EQ(split("hi!? ", g), (V{"hi", "!?", " "}));
}

// The merge loop, naive: rescans for the lowest rank (leftmost on ties) after each merge.
std::vector<int32_t> naive_merge(const PairTable& t, std::vector<int32_t> ids) {
  for (;;) {
    int32_t best = PairTable::kNoRank;
    size_t at = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const PairValue v = t.find(ids[i], ids[i + 1]);
      if (v.rank < best) best = v.rank, at = i;
    }
    if (best == PairTable::kNoRank) return ids;
    ids[at] = t.find(ids[at], ids[at + 1]).merged;
    ids.erase(ids.begin() + long(at) + 1);
  }
}

TEST(TokenizerText, MergeScanAndHeapAgreeWithNaive) {
  // A random merge table over a small alphabet, with shared ranks (as SentencePiece
  // scores and tiktoken splits produce) so that leftmost-on-tie matters.
  std::mt19937 rng(7);
  PairTable table;
  int32_t next_id = 8;
  for (int i = 0; i < 400; ++i) {
    const int32_t a = int32_t(rng() % uint32_t(next_id)), b = int32_t(rng() % uint32_t(next_id));
    if (table.find(a, b).rank != PairTable::kNoRank) continue;
    table.insert(a, b, {int32_t(rng() % 150), next_id++});
  }
  MergeScratch scratch;
  for (int trial = 0; trial < 3000; ++trial) {
    const size_t n = 1 + rng() % (trial % 2 ? 40 : 300);  // both sides of the scan limit
    std::vector<int32_t> ids(n);
    for (auto& id : ids) id = int32_t(rng() % 8);
    std::vector<int32_t> got = {-5, -6};  // merging starts at an offset into the vector
    got.insert(got.end(), ids.begin(), ids.end());
    bpe_merge(table, got, 2, scratch);
    std::vector<int32_t> want = {-5, -6};
    const std::vector<int32_t> merged = naive_merge(table, ids);
    want.insert(want.end(), merged.begin(), merged.end());
    ASSERT_EQ(got, want) << "trial " << trial << " n " << n;
  }
}

TEST(TokenizerText, PieceMap) {
  PieceMap m;
  m.build({"a", "", "hello world", "a", "\xE2\x96\x81the"});
  EXPECT_EQ(m.find("a"), 0);  // the first of duplicates
  EXPECT_EQ(m.find(""), -1);
  EXPECT_EQ(m.find("hello world"), 2);
  EXPECT_EQ(m.find("\xE2\x96\x81the"), 4);
  EXPECT_EQ(m.find("hello worl"), -1);
}

}  // namespace
}  // namespace lathe::tok
