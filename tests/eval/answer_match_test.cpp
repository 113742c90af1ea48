// GSM8K / PubMedQA answer extraction and exact match. Expected values are hand-written from
// the rules in src/eval/answer_match.h (no generated constants here); the data checks read
// ../shared/data when it is there and skip otherwise.
#include "eval/answer_match.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"

#ifndef LATHE_SOURCE_DIR
#define LATHE_SOURCE_DIR "."
#endif

namespace lathe {
namespace {

std::optional<std::string> ans(std::string_view text) { return extract_gsm8k_answer(text); }

TEST(Gsm8kExtract, TakesTheNumberAfterTheLastMark) {
  EXPECT_EQ(ans("She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18"), "18");
  EXPECT_EQ(ans("#### 1,234"), "1234");
  EXPECT_EQ(ans("#### $1,234.00."), "1234");
  EXPECT_EQ(ans("#### -5"), "-5");
  EXPECT_EQ(ans("#### 2.50"), "2.5");
  EXPECT_EQ(ans("#### 007"), "7");
  EXPECT_EQ(ans("#### 0.0"), "0");
  EXPECT_EQ(ans("#### -0"), "0");
  EXPECT_EQ(ans("#### .5"), "0.5");
  EXPECT_EQ(ans("first #### 3 then #### 4 apples and 5 pears"), "4");  // first after the last mark
  EXPECT_EQ(ans("####42"), "42");
}

TEST(Gsm8kExtract, FallsBackToTheLastNumber) {
  EXPECT_EQ(ans("So she has 3 + 4 = 7 apples. The answer is 7."), "7");
  EXPECT_EQ(ans("He earns $1,500 a week, so 52 weeks give $78,000."), "78000");
  EXPECT_EQ(ans("The total is -12 degrees"), "-12");
  EXPECT_EQ(ans("5-3=2"), "2");
  EXPECT_EQ(ans("from 5-3"), "3");                      // a dash after a digit is not a sign
  EXPECT_EQ(ans("the answer is 12, 13"), "13");         // a comma before a space ends a number
  EXPECT_EQ(ans("#### none yet, then 9 and 10"), "9");  // still after the mark: the first
  EXPECT_EQ(ans("#### nothing"), std::nullopt);
  EXPECT_EQ(ans("no digits at all."), std::nullopt);
  EXPECT_EQ(ans(""), std::nullopt);
  EXPECT_EQ(ans("version 1.2.3"),
            "3");  // reads "1.2" and "3": ".3" right after a digit is no number
}

TEST(Gsm8kMatch, ComparesNormalizedAnswers) {
  EXPECT_TRUE(gsm8k_exact_match("The answer is $18.00.", "Janet ... #### 18"));
  EXPECT_TRUE(gsm8k_exact_match("#### 1,000", "#### 1000"));
  EXPECT_FALSE(gsm8k_exact_match("#### 17", "#### 18"));
  EXPECT_FALSE(gsm8k_exact_match("I don't know", "#### 18"));
  EXPECT_FALSE(gsm8k_exact_match("", ""));
  EXPECT_DOUBLE_EQ(gsm8k_accuracy({"#### 1", "x 2", "3"}, {"#### 1", "#### 2", "#### 4"}), 2.0 / 3);
  EXPECT_EQ(gsm8k_accuracy({}, {}), 0.0);
  EXPECT_THROW(gsm8k_accuracy({"1"}, {}), Error);
}

// Every GSM8K test answer's "#### N" reads back as N without commas (the labels are integers).
TEST(Gsm8kMatch, ReadsEveryTestSetAnswer) {
  std::ifstream in(LATHE_SOURCE_DIR "/../shared/data/gsm8k/test.jsonl");
  if (!in) GTEST_SKIP() << "no ../shared/data/gsm8k/test.jsonl";
  size_t rows = 0;
  for (std::string line; std::getline(in, line);) {
    const std::string answer = nlohmann::json::parse(line).at("answer").get<std::string>();
    std::string want = answer.substr(answer.rfind("#### ") + 5);
    std::erase(want, ',');
    EXPECT_EQ(extract_gsm8k_answer(answer), want) << answer;
    EXPECT_TRUE(gsm8k_exact_match("The answer is " + want + ".", answer));
    ++rows;
  }
  EXPECT_EQ(rows, 1319u);
}

TEST(PubMedQaLabel, FirstWholeWord) {
  EXPECT_EQ(pubmedqa_label("Yes"), "yes");
  EXPECT_EQ(pubmedqa_label("  MAYBE."), "maybe");
  EXPECT_EQ(pubmedqa_label("Answer: no, because yes is wrong"), "no");
  EXPECT_EQ(pubmedqa_label("nothing is known; noted; eyes; yesterday"), "");
  EXPECT_EQ(pubmedqa_label("not sure, so maybe"), "maybe");
  EXPECT_EQ(pubmedqa_label("yes/no"), "yes");
  EXPECT_EQ(pubmedqa_label("no_way yes_"), "");  // '_' is a word character
  EXPECT_EQ(pubmedqa_label(""), "");
}

TEST(PubMedQaLabel, Accuracy) {
  EXPECT_DOUBLE_EQ(
      pubmedqa_accuracy({"Yes.", "maybe not", "unclear", "No"}, {"yes", "no", "maybe", "no"}), 0.5);
  EXPECT_EQ(pubmedqa_accuracy({}, {}), 0.0);
  EXPECT_THROW(pubmedqa_accuracy({}, {"yes"}), Error);
}

// The dataset's final_decision field is always one of the three labels.
TEST(PubMedQaLabel, ReadsEveryDatasetDecision) {
  std::ifstream in(LATHE_SOURCE_DIR "/../shared/data/pubmedqa/ori_pqal.json");
  if (!in) GTEST_SKIP() << "no ../shared/data/pubmedqa/ori_pqal.json";
  const nlohmann::json data = nlohmann::json::parse(in);
  size_t rows = 0;
  for (const auto& [id, row] : data.items()) {
    const std::string decision = row.at("final_decision").get<std::string>();
    EXPECT_EQ(pubmedqa_label(decision), decision) << id;
    ++rows;
  }
  EXPECT_EQ(rows, 1000u);
}

TEST(AnswerExactMatch, StripsSurroundingWhitespaceOnly) {
  EXPECT_TRUE(exact_match("  42\n", "42"));
  EXPECT_TRUE(exact_match("", " \t"));
  EXPECT_FALSE(exact_match("42.", "42"));
  EXPECT_FALSE(exact_match("a  b", "a b"));
  EXPECT_FALSE(exact_match("Yes", "yes"));
}

}  // namespace
}  // namespace lathe
