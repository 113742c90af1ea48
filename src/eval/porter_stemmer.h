// The Porter stemmer exactly as NLTK's PorterStemmer() (default NLTK_EXTENSIONS mode) stems,
// because rouge_score's use_stemmer=True runs that stemmer and ROUGE scores must match it.
#pragma once
#include <string>
#include <string_view>

namespace lathe {

// nltk.stem.PorterStemmer().stem(word): lowercases ASCII letters, then applies the irregular
// forms table and steps 1a..5b with NLTK's extensions. Exact for ASCII words (rouge tokens are
// [a-z0-9]+); non-ASCII bytes count as consonants one byte at a time, where NLTK counts
// characters, so such words may stem differently.
std::string porter_stem(std::string_view word);

}  // namespace lathe
