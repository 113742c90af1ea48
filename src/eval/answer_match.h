// Answer extraction and matching for the task evals (GSM8K, PubMedQA), modelled on
// lm-evaluation-harness, so fine-tuned models are scored the way published numbers are.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

// GSM8K's final answer: the first number after the last "####" (the dataset's answer mark);
// without "####", or with no number after it, the last number in the text (lm-eval's
// "flexible-extract"). A number is [-][$]digits with optional thousands commas and decimals,
// or [-][$].digits; the sign counts only at a word start ("5-3" reads 5 and 3). Normalized:
// "$" and "," dropped, leading zeros of the integer part and trailing zeros of the fraction
// removed ("$1,234.00" -> "1234", "2.50" -> "2.5", "-0" -> "0"). lm-eval compares strings
// without this last step, so "18.00" vs "18" matches here but not there.
std::optional<std::string> extract_gsm8k_answer(std::string_view text);

// Both texts have an answer and the answers are equal.
bool gsm8k_exact_match(std::string_view prediction, std::string_view reference);

// Fraction of pairs with gsm8k_exact_match; 0 for none; sizes must match (lathe::Error).
double gsm8k_accuracy(const std::vector<std::string>& predictions,
                      const std::vector<std::string>& references);

// The first of the words yes / no / maybe in the text (any case, a whole word: no ASCII
// letter, digit or '_' on either side), lowercased; "" when none occurs.
std::string pubmedqa_label(std::string_view text);

// Fraction of pairs whose prediction's label equals the reference's (the reference is
// usually just "yes", "no" or "maybe"); a prediction with no label is wrong. 0 for none.
double pubmedqa_accuracy(const std::vector<std::string>& predictions,
                         const std::vector<std::string>& references);

// The texts are equal after removing leading and trailing ASCII whitespace.
bool exact_match(std::string_view prediction, std::string_view reference);

}  // namespace lathe
