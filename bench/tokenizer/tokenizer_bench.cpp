// Single-thread encode (and decode) throughput of lathe's tokenizers over the GSM8K +
// PubMedQA + SAMSum texts, one encode call per text, as the data pipeline calls it.
// Compare with bench/tokenizer/sentencepiece_bench.py (same texts, same loop).
//
//   g++ -std=c++20 -O2 -Isrc -o /tmp/tokenizer_bench src/tokenizer/*.cpp
//       bench/tokenizer/tokenizer_bench.cpp      (one command line)
//   /tmp/tokenizer_bench --data ../shared/data [--passes 5] [label=FOLDER|FILE.model ...]
//
// Without tokenizers on the command line it times Llama 2 (tokenizer.json and the
// SentencePiece tokenizer.model) and Llama 3 (tokenizer.json and the tiktoken
// tokenizer.model) from <data>/tokenizers.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "corpus.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::unique_ptr<lathe::Tokenizer> open(const std::string& path) {
  if (path.size() > 6 && path.compare(path.size() - 6, 6, ".model") == 0) {
    return std::make_unique<lathe::Tokenizer>(lathe::tok::load_tokenizer_model(path));
  }
  return lathe::Tokenizer::load(path);
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "../shared/data";
  int passes = 5;
  std::vector<std::pair<std::string, std::string>> targets;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) {
      data = argv[++i];
    } else if (a == "--passes" && i + 1 < argc) {
      passes = std::max(1, std::atoi(argv[++i]));
    } else if (a.find('=') != std::string::npos) {
      targets.emplace_back(a.substr(0, a.find('=')), a.substr(a.find('=') + 1));
    } else {
      std::fprintf(stderr, "usage: %s [--data DIR] [--passes N] [label=FOLDER|FILE.model ...]\n",
                   argv[0]);
      return 2;
    }
  }
  if (targets.empty()) {
    targets = {{"llama2 tokenizer.json", data + "/tokenizers/llama2"},
               {"llama2 tokenizer.model", data + "/tokenizers/llama2/tokenizer.model"},
               {"llama3 tokenizer.json", data + "/tokenizers/llama3"},
               {"llama3 tokenizer.model", data + "/tokenizers/llama3/tokenizer.model"}};
  }
  const std::vector<std::string> texts = lathe::bench::corpus_texts(data);
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  std::printf("corpus: %zu texts, %zu bytes; %d timed passes after one warm-up, best pass\n",
              texts.size(), bytes, passes);
  std::printf("%-24s %8s %10s %12s %12s %12s\n", "tokenizer", "load s", "tokens", "encode MB/s",
              "Mtokens/s", "decode MB/s");
  for (const auto& [label, path] : targets) {
    auto t0 = Clock::now();
    std::unique_ptr<lathe::Tokenizer> tok = open(path);
    const double load_s = seconds_since(t0);
    std::vector<std::vector<int32_t>> ids(texts.size());
    double best_encode = 1e30, best_decode = 1e30;
    size_t tokens = 0;
    for (int pass = 0; pass <= passes; ++pass) {
      tokens = 0;
      t0 = Clock::now();
      for (size_t i = 0; i < texts.size(); ++i) {
        ids[i] = tok->encode(texts[i], /*add_special=*/false);
        tokens += ids[i].size();
      }
      const double enc = seconds_since(t0);
      t0 = Clock::now();
      size_t out_bytes = 0;
      for (const auto& v : ids) out_bytes += tok->decode(v).size();
      const double dec = seconds_since(t0);
      if (out_bytes == 0) return 1;  // keeps the decode loop from being optimized away
      if (pass > 0) {
        best_encode = std::min(best_encode, enc);
        best_decode = std::min(best_decode, dec);
      }
    }
    std::printf("%-24s %8.3f %10zu %12.2f %12.3f %12.1f\n", label.c_str(), load_s, tokens,
                double(bytes) / best_encode / 1e6, double(tokens) / best_encode / 1e6,
                double(bytes) / best_decode / 1e6);
  }
  return 0;
}
