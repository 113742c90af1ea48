// The benchmark corpus: every text field of GSM8K (train+test: question, answer),
// PubMedQA ori_pqal.json (QUESTION, CONTEXTS joined with "\n", LONG_ANSWER) and SAMSum
// (validation+test csv: dialogue, summary), in the order of corpus_texts() in
// tests/tokenizer/sentencepiece_reference.py, so both benchmarks time the same texts.
#pragma once
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/json.h"

namespace lathe::bench {

inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open");
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// RFC 4180: fields separated by commas, quoted fields may hold commas, newlines and "".
inline std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(std::move(field));
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      rows.back().push_back(std::move(field));
      field.clear();
      rows.emplace_back();
    } else {
      field += c;
    }
  }
  if (!field.empty() || !rows.back().empty()) rows.back().push_back(std::move(field));
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

inline std::vector<std::string> corpus_texts(const std::string& data) {
  std::vector<std::string> out;
  for (const char* split : {"train", "test"}) {
    std::ifstream f(data + "/gsm8k/" + split + ".jsonl");
    if (!f) throw std::runtime_error(data + "/gsm8k/" + split + ".jsonl: cannot open");
    for (std::string line; std::getline(f, line);) {
      const auto row = nlohmann::json::parse(line);
      out.push_back(row["question"]);
      out.push_back(row["answer"]);
    }
  }
  // nlohmann::ordered_json keeps the file's key order, as Python's json.load does.
  const auto pqa = nlohmann::ordered_json::parse(read_all(data + "/pubmedqa/ori_pqal.json"));
  for (const auto& [pmid, row] : pqa.items()) {
    out.push_back(row["QUESTION"]);
    std::string contexts;
    for (const auto& c : row["CONTEXTS"]) {
      if (!contexts.empty()) contexts += '\n';
      contexts += c.get<std::string>();
    }
    out.push_back(contexts);
    out.push_back(row["LONG_ANSWER"]);
  }
  for (const char* split : {"validation", "test"}) {
    const auto rows = parse_csv(read_all(data + "/samsum/" + split + ".csv"));
    size_t dialogue = 0, summary = 0;
    for (size_t c = 0; c < rows.at(0).size(); ++c) {
      if (rows[0][c] == "dialogue") dialogue = c;
      if (rows[0][c] == "summary") summary = c;
    }
    for (size_t r = 1; r < rows.size(); ++r) {
      out.push_back(rows[r].at(dialogue));
      out.push_back(rows[r].at(summary));
    }
  }
  return out;
}

}  // namespace lathe::bench
