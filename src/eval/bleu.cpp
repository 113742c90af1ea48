// A port of sacrebleu 2.x: metrics/bleu.py (statistics, compute_bleu), tokenizers/
// tokenizer_13a.py and tokenizer_re.py. The regex substitutions are byte scans with the same
// left-to-right, non-overlapping semantics as Python's re.sub; on UTF-8 they give the same
// result, since a multi-byte character never contains an ASCII byte.
#include "eval/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include "core/error.h"

namespace lathe {
namespace {

// Byte length of the Python str.isspace() character that starts at s[i], or 0.
size_t space_len_at(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const size_t left = s.size() - i;
  const unsigned char c = b(i);
  if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
  if (c == 0xC2 && left >= 2 && (b(i + 1) == 0x85 || b(i + 1) == 0xA0)) return 2;  // U+0085/00A0
  if (left < 3) return 0;
  const unsigned char c1 = b(i + 1), c2 = b(i + 2);
  if (c == 0xE1 && c1 == 0x9A && c2 == 0x80) return 3;  // U+1680
  if (c == 0xE2 && c1 == 0x80 &&
      ((c2 >= 0x80 && c2 <= 0x8A) || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF))
    return 3;                                           // U+2000..200A, U+2028, U+2029, U+202F
  if (c == 0xE2 && c1 == 0x81 && c2 == 0x9F) return 3;  // U+205F
  if (c == 0xE3 && c1 == 0x80 && c2 == 0x80) return 3;  // U+3000
  return 0;
}

// Python's str.split(): runs of whitespace separate tokens; no empty tokens.
std::vector<std::string> py_split(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < s.size();) {
    if (const size_t n = space_len_at(s, i)) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
      i += n;
    } else {
      cur.push_back(s[i++]);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// Python's str.rstrip().
std::string_view py_rstrip(std::string_view s) {
  for (bool stripped = true; stripped && !s.empty();) {
    stripped = false;
    for (size_t len = 1; len <= 3 && len <= s.size(); ++len) {
      if (space_len_at(s, s.size() - len) == len) {
        s.remove_suffix(len);
        stripped = true;
        break;
      }
    }
  }
  return s;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos);
  s = std::move(out);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_comma(char c) { return c == '.' || c == ','; }

// The first 13a regex's class [\{-\~\[-\` -\&\(-\+\:-\@\/]: ASCII punctuation except
// ' , - . and the space-to-& range including the space itself.
bool is_13a_punct(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
         (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == '/';
}

// re.sub(r'(A)(B)', repl, s) for one-character groups: scan left to right, and after a
// match continue after its second character.
template <class First, class Second, class Emit>
std::string sub_pairs(const std::string& s, First first, Second second, Emit emit) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && first(s[i]) && second(s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

using NgramCounts = std::unordered_map<std::string, int64_t>;

// sacrebleu extract_all_word_ngrams: every n-gram of orders 1..max_order, keyed by its tokens
// joined with spaces (tokens hold no whitespace, so keys are unambiguous).
NgramCounts ngram_counts(const std::vector<std::string>& tokens, int max_order) {
  NgramCounts counts;
  for (size_t n = 1; n <= static_cast<size_t>(max_order); ++n) {
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      std::string key = tokens[i];
      for (size_t j = 1; j < n; ++j) key += ' ' + tokens[i + j];
      ++counts[key];
    }
  }
  return counts;
}

size_t ngram_order(const std::string& key) {
  return static_cast<size_t>(std::count(key.begin(), key.end(), ' ')) + 1;
}

std::vector<std::string> preprocess(std::string_view segment, const BleuOptions& options) {
  std::string s(segment);
  if (options.lowercase)
    for (char& c : s)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (options.tokenize_13a) return py_split(tokenize_13a(s));
  return py_split(py_rstrip(s));
}

double my_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }  // sacrebleu's

}  // namespace

std::string tokenize_13a(std::string_view line) {
  std::string s(py_rstrip(line));
  replace_all(s, "<skipped>", "");
  replace_all(s, "-\n", "");
  replace_all(s, "\n", " ");
  if (s.find('&') != std::string::npos) {
    replace_all(s, "&quot;", "\"");
    replace_all(s, "&amp;", "&");
    replace_all(s, "&lt;", "<");
    replace_all(s, "&gt;", ">");
  }
  std::string padded;
  padded.reserve(s.size() * 2 + 2);
  padded.push_back(' ');
  for (char c : s) {  // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 "
    if (is_13a_punct(c)) {
      padded.push_back(' ');
      padded.push_back(c);
      padded.push_back(' ');
    } else {
      padded.push_back(c);
    }
  }
  padded.push_back(' ');
  const auto not_digit = [](char c) { return !is_digit(c); };
  // ([^0-9])([\.,]) -> "\1 \2 "
  s = sub_pairs(padded, not_digit, is_period_comma, [](std::string& o, char a, char b) {
    o += a;
    o += ' ';
    o += b;
    o += ' ';
  });
  // ([\.,])([^0-9]) -> " \1 \2"
  s = sub_pairs(s, is_period_comma, not_digit, [](std::string& o, char a, char b) {
    o += ' ';
    o += a;
    o += ' ';
    o += b;
  });
  // ([0-9])(-) -> "\1 \2 "
  s = sub_pairs(
      s, is_digit, [](char c) { return c == '-'; },
      [](std::string& o, char a, char b) {
        o += a;
        o += ' ';
        o += b;
        o += ' ';
      });
  std::string out;
  for (const std::string& token : py_split(s)) {
    if (!out.empty()) out += ' ';
    out += token;
  }
  return out;
}

BleuScore bleu_from_stats(const std::vector<int64_t>& counts, const std::vector<int64_t>& totals,
                          int64_t sys_len, int64_t ref_len, const BleuOptions& options) {
  const auto orders = static_cast<size_t>(options.max_ngram_order);
  LATHE_CHECK(options.max_ngram_order >= 1 && counts.size() == orders && totals.size() == orders,
              "bleu_from_stats: need ", orders, " counts and totals, got ", counts.size(), " and ",
              totals.size());
  BleuScore r;
  r.counts = counts;
  r.totals = totals;
  r.sys_len = sys_len;
  r.ref_len = ref_len;
  r.precisions.assign(orders, 0.0);
  if (sys_len < ref_len)
    r.bp = sys_len > 0 ? std::exp(1.0 - static_cast<double>(ref_len) / static_cast<double>(sys_len))
                       : 0.0;
  else
    r.bp = 1.0;
  if (std::all_of(counts.begin(), counts.end(), [](int64_t c) { return c == 0; }))
    return r;  // no match at all: BLEU 0, precisions 0 (sacrebleu issue #141)

  double smooth_value = 0;
  if (options.smooth == BleuSmooth::kFloor) smooth_value = options.smooth_value.value_or(0.1);
  if (options.smooth == BleuSmooth::kAddK) smooth_value = options.smooth_value.value_or(1.0);
  double smooth_mteval = 1.0;
  size_t eff_order = orders;
  for (size_t n = 1; n <= orders; ++n) {
    auto correct = static_cast<double>(counts[n - 1]);
    auto total = static_cast<double>(totals[n - 1]);
    if (options.smooth == BleuSmooth::kAddK && n > 1) {
      correct += smooth_value;
      total += smooth_value;
    }
    if (total == 0) break;
    if (options.effective_order) eff_order = n;
    if (correct == 0) {
      if (options.smooth == BleuSmooth::kExp) {
        smooth_mteval *= 2;
        r.precisions[n - 1] = 100. / (smooth_mteval * total);
      } else if (options.smooth == BleuSmooth::kFloor) {
        r.precisions[n - 1] = 100. * smooth_value / total;
      }
    } else {
      r.precisions[n - 1] = 100. * correct / total;
    }
  }
  double log_sum = 0;
  for (size_t n = 0; n < eff_order; ++n) log_sum += my_log(r.precisions[n]);
  r.score = r.bp * std::exp(log_sum / static_cast<double>(eff_order));
  return r;
}

BleuScore corpus_bleu_multi(const std::vector<std::string>& predictions,
                            const std::vector<std::vector<std::string>>& references,
                            const BleuOptions& options) {
  LATHE_CHECK(predictions.size() == references.size(), "corpus_bleu: ", predictions.size(),
              " predictions but ", references.size(), " reference lists");
  LATHE_CHECK(options.max_ngram_order >= 1, "corpus_bleu: max_ngram_order must be >= 1");
  const auto orders = static_cast<size_t>(options.max_ngram_order);
  std::vector<int64_t> counts(orders, 0), totals(orders, 0);
  int64_t sys_len = 0, ref_len = 0;
  for (size_t k = 0; k < predictions.size(); ++k) {
    // References: n-gram counts merged by maximum, and each one's length.
    NgramCounts ref_ngrams;
    std::vector<int64_t> ref_lens;
    for (const std::string& ref : references[k]) {
      if (ref.empty()) continue;  // sacrebleu drops empty references
      const std::vector<std::string> tokens = preprocess(ref, options);
      ref_lens.push_back(static_cast<int64_t>(tokens.size()));
      for (const auto& [gram, count] : ngram_counts(tokens, options.max_ngram_order)) {
        int64_t& slot = ref_ngrams[gram];
        slot = std::max(slot, count);
      }
    }
    const std::vector<std::string> hyp = preprocess(predictions[k], options);
    const auto hyp_len = static_cast<int64_t>(hyp.size());
    // The closest reference length; ties go to the shorter reference.
    int64_t closest = ref_lens.empty() ? 0 : ref_lens[0];
    for (int64_t len : ref_lens) {
      const int64_t d = std::abs(hyp_len - len), best = std::abs(hyp_len - closest);
      if (d < best || (d == best && len < closest)) closest = len;
    }
    sys_len += hyp_len;
    ref_len += closest;
    for (const auto& [gram, count] : ngram_counts(hyp, options.max_ngram_order)) {
      const size_t n = ngram_order(gram) - 1;
      totals[n] += count;
      const auto it = ref_ngrams.find(gram);
      if (it != ref_ngrams.end()) counts[n] += std::min(count, it->second);
    }
  }
  return bleu_from_stats(counts, totals, sys_len, ref_len, options);
}

BleuScore corpus_bleu(const std::vector<std::string>& predictions,
                      const std::vector<std::string>& references, const BleuOptions& options) {
  std::vector<std::vector<std::string>> refs;
  refs.reserve(references.size());
  for (const std::string& r : references) refs.push_back({r});
  return corpus_bleu_multi(predictions, refs, options);
}

}  // namespace lathe
