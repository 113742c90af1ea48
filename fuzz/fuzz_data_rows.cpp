// Dataset rows (jsonl, json, csv, plain text) through load_dataset with every data.format:
// read, rendered by the format's template, tokenized, fitted to seq_len. load_dataset reads
// a path, so each input is written to a file in the scratch folder.
//
// Input: byte 0 picks the format (bits 0-2, data_formats() order), the file type
// (bits 3-4: .jsonl .json .csv .txt), train_on_prompt (bit 5), too_long=drop (bit 6) and
// on_bad_row=skip (bit 7). Byte 1 picks the encoder's flavour (bit 0: Llama 3 chat specials,
// bit 1: adds BOS) and seq_len = 2 + 16 * (byte 1 >> 2). For format "template" the next two
// lines are data.prompt_template and the response (a template when it holds '{', else a
// field name). The rest is the file.
#include <omp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/formats.h"
#include "fuzz_util.h"

namespace {

constexpr int32_t kByteBase = 10;  // byte b encodes to id b + 10
constexpr int64_t kVocab = 512;    // for format input_ids

// One token per byte, as the data tests' encoder: rendering is what is fuzzed, not BPE.
class ByteEncoder final : public lathe::TextEncoder {
 public:
  ByteEncoder(bool llama3, bool adds_bos) : llama3_(llama3), adds_bos_(adds_bos) {}
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size());
    for (unsigned char c : text) ids.push_back(kByteBase + c);
    return ids;
  }
  int32_t bos_id() const override { return llama3_ ? 300 : 1; }
  int32_t eos_id() const override { return llama3_ ? 304 : 2; }
  std::optional<int32_t> special(std::string_view token) const override {
    if (!llama3_) return std::nullopt;
    if (token == "<|begin_of_text|>") return 300;
    if (token == "<|start_header_id|>") return 301;
    if (token == "<|end_header_id|>") return 302;
    if (token == "<|eot_id|>") return 303;
    return std::nullopt;
  }
  bool adds_bos() const override { return adds_bos_; }

 private:
  bool llama3_, adds_bos_;
};

std::string_view take_line(std::string_view& s) {
  size_t nl = s.find('\n');
  std::string_view line = s.substr(0, nl);
  s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  omp_set_num_threads(1);  // one thread: the same input always runs the same way
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* const kExtensions[] = {".jsonl", ".json", ".csv", ".txt"};
  const uint8_t sel = data[0], enc = data[1];
  std::string_view rest = lathe::fuzz::as_text(data + 2, size - 2);
  lathe::DataSpec spec;
  spec.format = lathe::data_formats()[sel & 7];
  spec.path = lathe::fuzz::scratch_dir() + "/rows" + kExtensions[(sel >> 3) & 3];
  spec.train_on_prompt = (sel >> 5) & 1;
  spec.too_long = (sel >> 6) & 1 ? "drop" : "truncate";
  spec.on_bad_row = (sel >> 7) & 1 ? "skip" : "error";
  spec.seq_len = 2 + 16 * (enc >> 2);
  spec.vocab_size = kVocab;
  if (spec.format == "template") {
    spec.prompt_template = std::string(take_line(rest));
    std::string response(take_line(rest));
    (response.find('{') != std::string::npos ? spec.response_template : spec.response_field) =
        response;
  }
  lathe::fuzz::write_file(spec.path, rest);
  const ByteEncoder encoder(enc & 1, (enc >> 1) & 1);
  lathe::fuzz::run_guarded([&] {
    lathe::DataStats stats;
    for (const lathe::TokenRow& row : lathe::load_dataset(spec, &encoder, &stats)) {
      if (row.input_ids.size() > size_t(spec.seq_len) ||
          (!row.labels.empty() && row.labels.size() != row.input_ids.size())) {
        std::fprintf(stderr, "row of %zu ids, %zu labels for seq_len %lld\n", row.input_ids.size(),
                     row.labels.size(), (long long)spec.seq_len);
        std::abort();
      }
    }
  });
  return 0;
}
