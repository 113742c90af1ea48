// ROUGE-1/2/L/Lsum exactly as Google's rouge_score (the package behind HF evaluate's "rouge")
// computes them, so summarization scores are comparable with published numbers.
// Arguments are prediction first, then reference (rouge_score's own score() is the reverse).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

struct RougeScore {
  double precision = 0, recall = 0, fmeasure = 0;  // fmeasure = 2PR/(P+R), 0 when P+R = 0
};

struct RougeScores {
  RougeScore rouge1, rouge2, rouge_l, rouge_lsum;
};

// rouge_score's tokenizer: lowercase, every run outside [a-z0-9] becomes a space, split, then
// (use_stemmer) NLTK Porter stems of tokens longer than 3 characters. Python lowercases U+0130
// to "i" + U+0307 and U+212A (Kelvin) to "k"; those two are mapped the same way here.
std::vector<std::string> rouge_tokenize(std::string_view text, bool use_stemmer = false);

// ROUGE-N on tokens: overlap = sum over reference n-grams of min(count in ref, count in pred);
// P = overlap / max(pred n-grams, 1), R = overlap / max(ref n-grams, 1).
RougeScore rouge_n(const std::vector<std::string>& prediction,
                   const std::vector<std::string>& reference, int n);

// ROUGE-L on tokens: LCS length over prediction and reference lengths (0 if either is empty).
RougeScore rouge_l(const std::vector<std::string>& prediction,
                   const std::vector<std::string>& reference);

// ROUGE-Lsum: both texts split into sentences on "\n" (empty lines dropped), then
// rouge_score's _summary_level_lcs (union LCS per reference sentence, hits clipped by the
// token counts of both texts).
RougeScore rouge_lsum(std::string_view prediction, std::string_view reference,
                      bool use_stemmer = false);

// All four for one pair, as RougeScorer(["rouge1","rouge2","rougeL","rougeLsum"]).score().
RougeScores rouge(std::string_view prediction, std::string_view reference,
                  bool use_stemmer = false);

// RougeScorer.score_multi: per type, the score of the first reference with the highest
// fmeasure. No references gives zeros.
RougeScores rouge_multi(std::string_view prediction, const std::vector<std::string>& references,
                        bool use_stemmer = false);

// Corpus ROUGE as HF evaluate reports it by default: the mean fmeasure over pairs. (evaluate's
// BootstrapAggregator reports the median of 1000 random resampled means, which estimates this
// mean and varies from run to run by about 1e-3; this is the exact mean.) Zeros for no pairs;
// sizes must match (lathe::Error otherwise).
struct RougeCorpus {
  double rouge1 = 0, rouge2 = 0, rouge_l = 0, rouge_lsum = 0;
};
RougeCorpus rouge_corpus(const std::vector<std::string>& predictions,
                         const std::vector<std::string>& references, bool use_stemmer = false);

}  // namespace lathe
