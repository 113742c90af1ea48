// Follows rouge_score 0.1.2 (rouge_scorer.py, tokenize.py, scoring.py) step for step; the
// LCS read-out keeps its tie-breaking, which decides ROUGE-Lsum's union LCS.
#include "eval/rouge.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "eval/porter_stemmer.h"

namespace lathe {
namespace {

RougeScore make_score(double precision, double recall) {
  const double f = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
  return {precision, recall, f};
}

// Tokens as small integers, so LCS tables and counters compare ints, not strings.
struct Interner {
  std::unordered_map<std::string, int> ids;
  std::vector<int> intern(const std::vector<std::string>& tokens) {
    std::vector<int> out;
    out.reserve(tokens.size());
    for (const std::string& t : tokens)
      out.push_back(ids.emplace(t, static_cast<int>(ids.size())).first->second);
    return out;
  }
};

// rouge_score _lcs_table: t[i][j] = LCS length of ref[:i] and can[:j], row-major.
std::vector<int> lcs_table(const std::vector<int>& ref, const std::vector<int>& can) {
  const size_t cols = can.size() + 1;
  std::vector<int> t((ref.size() + 1) * cols, 0);
  for (size_t i = 1; i <= ref.size(); ++i)
    for (size_t j = 1; j <= can.size(); ++j)
      t[i * cols + j] = ref[i - 1] == can[j - 1]
                            ? t[(i - 1) * cols + j - 1] + 1
                            : std::max(t[(i - 1) * cols + j], t[i * cols + j - 1]);
  return t;
}

size_t lcs_length(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> prev(b.size() + 1, 0), cur(b.size() + 1, 0);  // two rows suffice
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return static_cast<size_t>(prev[b.size()]);
}

// rouge_score _backtrack_norec: positions in ref of one LCS. On a tie it moves up (i - 1),
// moving left only when the left cell is strictly larger.
std::vector<size_t> lcs_positions(const std::vector<int>& ref, const std::vector<int>& can) {
  const std::vector<int> t = lcs_table(ref, can);
  const size_t cols = can.size() + 1;
  std::vector<size_t> out;
  size_t i = ref.size(), j = can.size();
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      out.push_back(i - 1);
      --i;
      --j;
    } else if (t[i * cols + j - 1] > t[(i - 1) * cols + j]) {
      --j;
    } else {
      --i;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// rouge_score get_sents without nltk: split on "\n", drop empty strings (not blank ones).
std::vector<std::vector<std::string>> sentence_tokens(std::string_view text, bool use_stemmer) {
  std::vector<std::vector<std::string>> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.push_back(rouge_tokenize(text.substr(start, end - start), use_stemmer));
    start = end + 1;
  }
  return out;
}

// rouge_score _summary_level_lcs on tokenized sentences.
RougeScore summary_level_lcs(const std::vector<std::vector<std::string>>& ref_sents,
                             const std::vector<std::vector<std::string>>& can_sents) {
  if (ref_sents.empty() || can_sents.empty()) return {};
  Interner interner;
  std::vector<std::vector<int>> refs, cans;
  for (const auto& s : ref_sents) refs.push_back(interner.intern(s));
  for (const auto& s : can_sents) cans.push_back(interner.intern(s));
  size_t m = 0, n = 0;
  std::vector<int> count_r(interner.ids.size(), 0), count_c(interner.ids.size(), 0);
  for (const auto& s : refs) {
    m += s.size();
    for (int t : s) ++count_r[static_cast<size_t>(t)];
  }
  for (const auto& s : cans) {
    n += s.size();
    for (int t : s) ++count_c[static_cast<size_t>(t)];
  }
  if (m == 0 || n == 0) return {};
  size_t hits = 0;
  for (const auto& r : refs) {
    std::vector<char> in_union(r.size(), 0);
    for (const auto& c : cans)
      for (size_t i : lcs_positions(r, c)) in_union[i] = 1;
    for (size_t i = 0; i < r.size(); ++i) {
      if (!in_union[i]) continue;
      const auto t = static_cast<size_t>(r[i]);
      if (count_c[t] > 0 && count_r[t] > 0) {  // each token counted at most as often as it occurs
        ++hits;
        --count_c[t];
        --count_r[t];
      }
    }
  }
  return make_score(static_cast<double>(hits) / static_cast<double>(n),
                    static_cast<double>(hits) / static_cast<double>(m));
}

}  // namespace

std::vector<std::string> rouge_tokenize(std::string_view text, bool use_stemmer) {
  std::vector<std::string> tokens;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    if (use_stemmer && cur.size() > 3) cur = porter_stem(cur);
    if (!cur.empty()) tokens.push_back(std::move(cur));  // stems stay within [a-z0-9]
    cur.clear();
  };
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur.push_back(static_cast<char>(c));
      ++i;
    } else if (c >= 'A' && c <= 'Z') {
      cur.push_back(static_cast<char>(c - 'A' + 'a'));
      ++i;
    } else if (c == 0xC4 && i + 1 < n && static_cast<unsigned char>(text[i + 1]) == 0xB0) {
      cur.push_back('i');  // U+0130 lowercases to "i" + U+0307, which then splits
      flush();
      i += 2;
    } else if (c == 0xE2 && i + 2 < n && static_cast<unsigned char>(text[i + 1]) == 0x84 &&
               static_cast<unsigned char>(text[i + 2]) == 0xAA) {
      cur.push_back('k');  // U+212A KELVIN SIGN lowercases to "k"
      i += 3;
    } else {
      flush();
      ++i;
    }
  }
  flush();
  return tokens;
}

RougeScore rouge_n(const std::vector<std::string>& prediction,
                   const std::vector<std::string>& reference, int n) {
  LATHE_CHECK(n > 0, "rouge_n needs n >= 1, got ", n);
  auto ngrams = [n](const std::vector<std::string>& tokens) {
    std::unordered_map<std::string, int64_t> counts;
    const auto k = static_cast<size_t>(n);
    for (size_t i = 0; i + k <= tokens.size(); ++i) {
      std::string key = tokens[i];
      for (size_t j = 1; j < k; ++j) key += ' ' + tokens[i + j];  // tokens hold no spaces
      ++counts[key];
    }
    return counts;
  };
  const auto ref = ngrams(reference), pred = ngrams(prediction);
  int64_t overlap = 0, ref_total = 0, pred_total = 0;
  for (const auto& [gram, count] : ref) {
    ref_total += count;
    const auto it = pred.find(gram);
    if (it != pred.end()) overlap += std::min(count, it->second);
  }
  for (const auto& [gram, count] : pred) pred_total += count;
  return make_score(
      static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(pred_total, 1)),
      static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(ref_total, 1)));
}

RougeScore rouge_l(const std::vector<std::string>& prediction,
                   const std::vector<std::string>& reference) {
  if (prediction.empty() || reference.empty()) return {};
  Interner interner;
  const std::vector<int> ref = interner.intern(reference), pred = interner.intern(prediction);
  const auto lcs = static_cast<double>(lcs_length(ref, pred));
  return make_score(lcs / static_cast<double>(pred.size()), lcs / static_cast<double>(ref.size()));
}

RougeScore rouge_lsum(std::string_view prediction, std::string_view reference, bool use_stemmer) {
  return summary_level_lcs(sentence_tokens(reference, use_stemmer),
                           sentence_tokens(prediction, use_stemmer));
}

RougeScores rouge(std::string_view prediction, std::string_view reference, bool use_stemmer) {
  const auto pred = rouge_tokenize(prediction, use_stemmer);
  const auto ref = rouge_tokenize(reference, use_stemmer);
  return {rouge_n(pred, ref, 1), rouge_n(pred, ref, 2), rouge_l(pred, ref),
          rouge_lsum(prediction, reference, use_stemmer)};
}

RougeScores rouge_multi(std::string_view prediction, const std::vector<std::string>& references,
                        bool use_stemmer) {
  RougeScores best;
  for (size_t k = 0; k < references.size(); ++k) {
    const RougeScores s = rouge(prediction, references[k], use_stemmer);
    auto take = [k](RougeScore& b, const RougeScore& x) {
      if (k == 0 || x.fmeasure > b.fmeasure) b = x;  // np.argmax: the first maximum wins
    };
    take(best.rouge1, s.rouge1);
    take(best.rouge2, s.rouge2);
    take(best.rouge_l, s.rouge_l);
    take(best.rouge_lsum, s.rouge_lsum);
  }
  return best;
}

RougeCorpus rouge_corpus(const std::vector<std::string>& predictions,
                         const std::vector<std::string>& references, bool use_stemmer) {
  LATHE_CHECK(predictions.size() == references.size(), "rouge_corpus: ", predictions.size(),
              " predictions but ", references.size(), " references");
  RougeCorpus sum;
  if (predictions.empty()) return sum;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const RougeScores s = rouge(predictions[i], references[i], use_stemmer);
    sum.rouge1 += s.rouge1.fmeasure;
    sum.rouge2 += s.rouge2.fmeasure;
    sum.rouge_l += s.rouge_l.fmeasure;
    sum.rouge_lsum += s.rouge_lsum.fmeasure;
  }
  const auto count = static_cast<double>(predictions.size());
  return {sum.rouge1 / count, sum.rouge2 / count, sum.rouge_l / count, sum.rouge_lsum / count};
}

}  // namespace lathe
