// Corpus BLEU exactly as sacrebleu 2.x computes it by default (13a tokenization, mixed case,
// n-grams up to 4, corpus brevity penalty, 'exp' smoothing), so scores match the WMT standard.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

// sacrebleu's smooth_method: kNone (a zero precision gives BLEU 0), kFloor (a zero count
// becomes smooth_value, default 0.1), kAddK (k, default 1, added to counts and totals of
// orders >= 2), kExp (the k-th zero precision becomes 1 / (2^k * total); mteval's method).
enum class BleuSmooth { kNone, kFloor, kAddK, kExp };

struct BleuOptions {
  BleuSmooth smooth = BleuSmooth::kExp;
  std::optional<double> smooth_value;  // kFloor/kAddK; unset: sacrebleu's default
  int max_ngram_order = 4;
  bool tokenize_13a = true;      // false: split on whitespace only (sacrebleu tokenize='none')
  bool lowercase = false;        // ASCII letters only (sacrebleu's Python lower() does more)
  bool effective_order = false;  // stop at the first order with no n-grams (sentence BLEU)
};

struct BleuScore {
  double score = 0;                // 0-100
  std::vector<double> precisions;  // per order, 0-100, after smoothing
  double bp = 0;                   // brevity penalty
  int64_t sys_len = 0, ref_len = 0;
  std::vector<int64_t> counts, totals;  // clipped matches and hypothesis n-grams per order
};

// sacrebleu's 13a tokenizer (mteval-v13a.pl) on one segment, after BLEU's rstrip(): drops
// "<skipped>", joins "-\n", turns newlines into spaces, unescapes &quot; &amp; &lt; &gt;,
// splits punctuation off words (periods and commas only when not next to digits, dashes
// after digits), and joins the tokens with single spaces.
std::string tokenize_13a(std::string_view line);

// Corpus BLEU with references[i] the references of predictions[i] (any number each; empty
// strings are dropped as sacrebleu does, and a prediction left with none scores against an
// empty reference). Sizes must match (lathe::Error otherwise).
BleuScore corpus_bleu_multi(const std::vector<std::string>& predictions,
                            const std::vector<std::vector<std::string>>& references,
                            const BleuOptions& options = {});

// One reference per prediction.
BleuScore corpus_bleu(const std::vector<std::string>& predictions,
                      const std::vector<std::string>& references, const BleuOptions& options = {});

// sacrebleu's BLEU.compute_bleu: the score from summed statistics (counts/totals per order).
BleuScore bleu_from_stats(const std::vector<int64_t>& counts, const std::vector<int64_t>& totals,
                          int64_t sys_len, int64_t ref_len, const BleuOptions& options = {});

}  // namespace lathe
