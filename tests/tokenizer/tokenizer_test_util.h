// Where the tokenizer tests find their data.
//  - tests/data/tokenizer/: small fixtures in the repo (llama.cpp vectors, Meta and
//    llama2.c encode vectors, the Llama 2 tokenizer.model + config); see PROVENANCE.md.
//  - The shared data folder, for the big files (Llama 3 tokenizer.json/.model, the Llama 2
//    tokenizer.json, the GSM8K / PubMedQA / SAMSum corpus): $LATHE_SHARED_DATA, else
//    <repo>/../shared/data, where CI has it. Tests that need it skip with a message
//    when it is absent.
//  - The reference ids that tests/tokenizer/sentencepiece_reference.py writes:
//    $LATHE_TOKENIZER_REFERENCE, else <golden dir>/sp_reference.jsonl.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

#ifndef LATHE_SOURCE_DIR
#define LATHE_SOURCE_DIR "."
#endif
#ifndef LATHE_GOLDEN_DIR
#define LATHE_GOLDEN_DIR "build/tests/golden"
#endif

namespace lathe::tok_test {

inline std::string fixtures() { return std::string(LATHE_SOURCE_DIR) + "/tests/data/tokenizer"; }

inline std::string shared_data() {
  if (const char* env = std::getenv("LATHE_SHARED_DATA")) return env;
  return std::string(LATHE_SOURCE_DIR) + "/../shared/data";
}

inline std::string reference_file() {
  if (const char* env = std::getenv("LATHE_TOKENIZER_REFERENCE")) return env;
  return std::string(LATHE_GOLDEN_DIR) + "/sp_reference.jsonl";
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// A folder holding only `files` copied from `from`: selects tokenizer.model over a
// tokenizer.json that sits beside it.
inline std::string folder_with(const std::string& from, const std::vector<std::string>& files,
                               const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("lathe_tok_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& f : files) {
    if (fs::exists(fs::path(from) / f)) fs::copy_file(fs::path(from) / f, dir / f);
  }
  return dir.string();
}

// Cached per process: the Llama 3 tokenizer.json takes ~0.5 s to load.
// kind: "llama2-json", "llama2-model", "llama3-json", "llama3-model".
inline const Tokenizer* cached(const std::string& kind) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  if (auto it = cache.find(kind); it != cache.end()) return it->second.get();
  namespace fs = std::filesystem;
  std::string folder;
  const std::string l2_shared = shared_data() + "/tokenizers/llama2";
  const std::string l3_shared = shared_data() + "/tokenizers/llama3";
  if (kind == "llama2-json" && fs::exists(l2_shared + "/tokenizer.json")) folder = l2_shared;
  if (kind == "llama2-model") folder = fixtures() + "/llama2";  // in the repo
  if (kind == "llama3-json" && fs::exists(l3_shared + "/tokenizer.json")) {
    folder = folder_with(l3_shared,
                         {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"},
                         "l3json");
  }
  if (kind == "llama3-model" && fs::exists(l3_shared + "/tokenizer.model")) {
    folder = folder_with(l3_shared,
                         {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"},
                         "l3model");
  }
  std::unique_ptr<Tokenizer> t = folder.empty() ? nullptr : Tokenizer::load(folder);
  return (cache[kind] = std::move(t)).get();
}

}  // namespace lathe::tok_test

// Skips the test, visibly, when the tokenizer's files are not there.
#define LATHE_TOKENIZER_OR_SKIP(var, kind)                                                  \
  const ::lathe::Tokenizer* var = ::lathe::tok_test::cached(kind);                          \
  if (var == nullptr)                                                                       \
  GTEST_SKIP() << kind << " tokenizer not found under " << ::lathe::tok_test::shared_data() \
               << " (set LATHE_SHARED_DATA to the shared data folder)"
