// A line-by-line port of nltk/stem/porter.py (NLTK 3.8, mode NLTK_EXTENSIONS). Each step keeps
// NLTK's rule order and its "first matching suffix decides, even when its condition fails"
// behaviour, since that is what makes the stems agree word for word.
#include "eval/porter_stemmer.h"

#include <functional>
#include <vector>

namespace lathe {
namespace {

using Cond = std::function<bool(std::string_view)>;

struct Rule {
  std::string_view suffix;  // "*d" means "ends in a double consonant" (step 1b)
  std::string replacement;
  Cond condition;  // empty: unconditional
};

bool is_vowel_letter(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// NLTK _is_consonant: a letter other than a, e, i, o, u, and other than a y preceded by a
// consonant. Walks back over a run of y's instead of recursing.
bool is_consonant(std::string_view w, size_t i) {
  if (is_vowel_letter(w[i])) return false;
  if (w[i] != 'y') return true;
  size_t start = i;  // first y of the run of y's that ends at i
  while (start > 0 && w[start - 1] == 'y') --start;
  const size_t t = i - start;                          // consonant-ness alternates along the run
  if (start == 0) return t % 2 == 0;                   // a y at position 0 is a consonant
  const bool before = !is_vowel_letter(w[start - 1]);  // w[start-1] is not a y
  return t % 2 == 0 ? !before : before;
}

// m in [C](VC){m}[V]: the number of vowel-to-consonant transitions.
int measure(std::string_view stem) {
  int m = 0;
  bool prev_vowel = false;
  for (size_t i = 0; i < stem.size(); ++i) {
    const bool consonant = is_consonant(stem, i);
    if (consonant && prev_vowel) ++m;
    prev_vowel = !consonant;
  }
  return m;
}

bool positive_measure(std::string_view stem) { return measure(stem) > 0; }
bool measure_gt_1(std::string_view stem) { return measure(stem) > 1; }

bool contains_vowel(std::string_view stem) {
  for (size_t i = 0; i < stem.size(); ++i)
    if (!is_consonant(stem, i)) return true;
  return false;
}

bool ends_double_consonant(std::string_view w) {
  return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && is_consonant(w, w.size() - 1);
}

// *o: ends consonant-vowel-consonant, the last not w, x or y; NLTK also accepts a two-letter
// vowel-consonant word.
bool ends_cvc(std::string_view w) {
  const size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) &&
      w[n - 1] != 'w' && w[n - 1] != 'x' && w[n - 1] != 'y')
    return true;
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);
}

bool ends_with(std::string_view w, std::string_view suffix) {
  return w.size() >= suffix.size() && w.substr(w.size() - suffix.size()) == suffix;
}

std::string drop(std::string_view w, size_t n) { return std::string(w.substr(0, w.size() - n)); }

// NLTK _apply_rule_list: the first rule whose suffix matches decides; if its condition fails
// the word comes back unchanged and no later rule is tried.
std::string apply_rules(std::string_view word, const std::vector<Rule>& rules) {
  for (const Rule& r : rules) {
    if (r.suffix == "*d" && ends_double_consonant(word)) {
      std::string stem = drop(word, 2);
      if (!r.condition || r.condition(stem)) return stem + r.replacement;
      return std::string(word);
    }
    if (ends_with(word, r.suffix)) {
      std::string stem = drop(word, r.suffix.size());
      if (!r.condition || r.condition(stem)) return stem + r.replacement;
      return std::string(word);
    }
  }
  return std::string(word);
}

std::string step1a(std::string_view w) {
  if (ends_with(w, "ies") && w.size() == 4) return drop(w, 3) + "ie";  // dies -> die
  return apply_rules(w, {{"sses", "ss", {}}, {"ies", "i", {}}, {"ss", "ss", {}}, {"s", "", {}}});
}

std::string step1b(std::string_view w) {
  if (ends_with(w, "ied")) return drop(w, 3) + (w.size() == 4 ? "ie" : "i");  // died, spied
  if (ends_with(w, "eed")) {
    std::string stem = drop(w, 3);
    return measure(stem) > 0 ? stem + "ee" : std::string(w);
  }
  std::string inter;
  bool found = false;
  for (std::string_view suffix : {std::string_view("ed"), std::string_view("ing")}) {
    if (ends_with(w, suffix)) {
      inter = drop(w, suffix.size());
      if (contains_vowel(inter)) {
        found = true;
        break;
      }
    }
  }
  if (!found) return std::string(w);
  const char last = inter.back();  // inter holds a vowel, so it is not empty
  return apply_rules(
      inter, {{"at", "ate", {}},
              {"bl", "ble", {}},
              {"iz", "ize", {}},
              {"*d", std::string(1, last),
               [last](std::string_view) { return last != 'l' && last != 's' && last != 'z'; }},
              {"", "e", [](std::string_view s) { return measure(s) == 1 && ends_cvc(s); }}});
}

std::string step1c(std::string_view w) {
  return apply_rules(w, {{"y", "i", [](std::string_view s) {
                            return s.size() > 1 && is_consonant(s, s.size() - 1);
                          }}});
}

std::string step2(std::string_view w) {
  if (ends_with(w, "alli") && positive_measure(w.substr(0, w.size() - 4)))
    return step2(drop(w, 4) + "al");
  const std::string word(w);
  const Cond pos = positive_measure;
  return apply_rules(word,
                     {{"ational", "ate", pos},
                      {"tional", "tion", pos},
                      {"enci", "ence", pos},
                      {"anci", "ance", pos},
                      {"izer", "ize", pos},
                      {"bli", "ble", pos},
                      {"alli", "al", pos},
                      {"entli", "ent", pos},
                      {"eli", "e", pos},
                      {"ousli", "ous", pos},
                      {"ization", "ize", pos},
                      {"ation", "ate", pos},
                      {"ator", "ate", pos},
                      {"alism", "al", pos},
                      {"iveness", "ive", pos},
                      {"fulness", "ful", pos},
                      {"ousness", "ous", pos},
                      {"aliti", "al", pos},
                      {"iviti", "ive", pos},
                      {"biliti", "ble", pos},
                      {"fulli", "ful", pos},
                      // The l of logi stays with the stem for the measure, so geo-logi works.
                      {"logi", "log", [&word](std::string_view) {
                         return positive_measure(std::string_view(word).substr(0, word.size() - 3));
                       }}});
}

std::string step3(std::string_view w) {
  const Cond pos = positive_measure;
  return apply_rules(w, {{"icate", "ic", pos},
                         {"ative", "", pos},
                         {"alize", "al", pos},
                         {"iciti", "ic", pos},
                         {"ical", "ic", pos},
                         {"ful", "", pos},
                         {"ness", "", pos}});
}

std::string step4(std::string_view w) {
  const Cond gt1 = measure_gt_1;
  return apply_rules(
      w,
      {{"al", "", gt1},
       {"ance", "", gt1},
       {"ence", "", gt1},
       {"er", "", gt1},
       {"ic", "", gt1},
       {"able", "", gt1},
       {"ible", "", gt1},
       {"ant", "", gt1},
       {"ement", "", gt1},
       {"ment", "", gt1},
       {"ent", "", gt1},
       {"ion", "",
        [](std::string_view s) { return measure(s) > 1 && (s.back() == 's' || s.back() == 't'); }},
       {"ou", "", gt1},
       {"ism", "", gt1},
       {"ate", "", gt1},
       {"iti", "", gt1},
       {"ous", "", gt1},
       {"ive", "", gt1},
       {"ize", "", gt1}});
}

// Both e-rules are tried (unlike _apply_rule_list), as in NLTK.
std::string step5a(std::string_view w) {
  if (ends_with(w, "e")) {
    std::string stem = drop(w, 1);
    const int m = measure(stem);
    if (m > 1) return stem;
    if (m == 1 && !ends_cvc(stem)) return stem;
  }
  return std::string(w);
}

std::string step5b(std::string_view w) {
  const std::string word(w);
  return apply_rules(word, {{"ll", "l", [&word](std::string_view) {
                               return measure(std::string_view(word).substr(0, word.size() - 1)) >
                                      1;
                             }}});
}

// NLTK_EXTENSIONS' irregular forms, looked up before any step.
const char* irregular(std::string_view w) {
  static constexpr std::pair<std::string_view, const char*> kPool[] = {
      {"sky", "sky"},        {"skies", "sky"},        {"dying", "die"},
      {"lying", "lie"},      {"tying", "tie"},        {"news", "news"},
      {"innings", "inning"}, {"inning", "inning"},    {"outings", "outing"},
      {"outing", "outing"},  {"cannings", "canning"}, {"canning", "canning"},
      {"howe", "howe"},      {"proceed", "proceed"},  {"exceed", "exceed"},
      {"succeed", "succeed"}};
  for (const auto& [form, stem] : kPool)
    if (form == w) return stem;
  return nullptr;
}

}  // namespace

std::string porter_stem(std::string_view word) {
  std::string w(word);
  for (char& c : w)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  // NLTK looks the word up before lowercasing it: "Skies" is stemmed, "skies" is not.
  if (const char* s = irregular(word)) return s;
  if (w.size() <= 2) return w;
  w = step1a(w);
  w = step1b(w);
  w = step1c(w);
  w = step2(w);
  w = step3(w);
  w = step4(w);
  w = step5a(w);
  w = step5b(w);
  return w;
}

}  // namespace lathe
