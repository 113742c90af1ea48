// Numbers are found by a hand scanner rather than a regex, so the rules in answer_match.h
// are all there is (std::regex also has no lookbehind for the word-start sign rule).
#include "eval/answer_match.h"

#include "core/error.h"

namespace lathe {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// The number starting exactly at s[i], normalized, and where it ends; nullopt if none does.
std::optional<std::string> number_at(std::string_view s, size_t i, size_t* end) {
  const size_t n = s.size();
  size_t j = i;
  bool negative = false;
  if (j < n && s[j] == '-' && (j == 0 || !is_word_char(s[j - 1]))) {
    negative = true;
    ++j;
  }
  if (j < n && s[j] == '$') ++j;
  std::string int_part, frac_part;
  while (j < n) {  // digits, with commas only between digits
    if (is_digit(s[j])) {
      int_part += s[j++];
    } else if (s[j] == ',' && !int_part.empty() && j + 1 < n && is_digit(s[j + 1])) {
      ++j;
    } else {
      break;
    }
  }
  if (int_part.empty()) {  // ".5" only where no digit or '.' comes before
    const bool starts_ok = j == 0 || (!is_digit(s[j - 1]) && s[j - 1] != '.');
    if (!starts_ok || j >= n || s[j] != '.' || j + 1 >= n || !is_digit(s[j + 1]))
      return std::nullopt;
  }
  if (j + 1 < n && s[j] == '.' && is_digit(s[j + 1])) {
    ++j;
    while (j < n && is_digit(s[j])) frac_part += s[j++];
  }
  *end = j;
  const size_t nz = int_part.find_first_not_of('0');
  int_part = nz == std::string::npos ? "0" : int_part.substr(nz);
  while (!frac_part.empty() && frac_part.back() == '0') frac_part.pop_back();
  std::string out = int_part;
  if (!frac_part.empty()) out += "." + frac_part;
  if (negative && out != "0") out = "-" + out;
  return out;
}

std::vector<std::string> numbers_in(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t end = i;
    if (auto num = number_at(s, i, &end)) {
      out.push_back(std::move(*num));
      i = end;
    } else {
      ++i;
    }
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string> extract_gsm8k_answer(std::string_view text) {
  const size_t mark = text.rfind("####");
  if (mark != std::string_view::npos) {
    const std::vector<std::string> after = numbers_in(text.substr(mark + 4));
    if (!after.empty()) return after.front();
  }
  std::vector<std::string> all = numbers_in(text);
  if (all.empty()) return std::nullopt;
  return std::move(all.back());
}

bool gsm8k_exact_match(std::string_view prediction, std::string_view reference) {
  const auto pred = extract_gsm8k_answer(prediction);
  const auto ref = extract_gsm8k_answer(reference);
  return pred && ref && *pred == *ref;
}

double gsm8k_accuracy(const std::vector<std::string>& predictions,
                      const std::vector<std::string>& references) {
  LATHE_CHECK(predictions.size() == references.size(), "gsm8k_accuracy: ", predictions.size(),
              " predictions but ", references.size(), " references");
  if (predictions.empty()) return 0.0;
  size_t right = 0;
  for (size_t i = 0; i < predictions.size(); ++i)
    right += gsm8k_exact_match(predictions[i], references[i]) ? 1 : 0;
  return static_cast<double>(right) / static_cast<double>(predictions.size());
}

std::string pubmedqa_label(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (!is_word_char(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    std::string word;
    while (j < text.size() && is_word_char(text[j])) {
      char c = text[j++];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      word += c;
    }
    if (word == "yes" || word == "no" || word == "maybe") return word;
    i = j;
  }
  return "";
}

double pubmedqa_accuracy(const std::vector<std::string>& predictions,
                         const std::vector<std::string>& references) {
  LATHE_CHECK(predictions.size() == references.size(), "pubmedqa_accuracy: ", predictions.size(),
              " predictions but ", references.size(), " references");
  if (predictions.empty()) return 0.0;
  size_t right = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const std::string label = pubmedqa_label(predictions[i]);
    right += !label.empty() && label == pubmedqa_label(references[i]) ? 1 : 0;
  }
  return static_cast<double>(right) / static_cast<double>(predictions.size());
}

bool exact_match(std::string_view prediction, std::string_view reference) {
  return trim(prediction) == trim(reference);
}

}  // namespace lathe
