// tokenizer.json (HF tokenizers) through the loader, then the Tokenizer built from it
// encodes and decodes. Input: the file's bytes, optionally a NUL and the text to encode
// (a sample text otherwise).
#include <cstdint>
#include <string>

#include "fuzz_tokenizer_text.h"
#include "fuzz_util.h"
#include "tokenizer/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = lathe::fuzz::split_at_nul(lathe::fuzz::as_text(data, size));
  const std::string_view file = parts.first, text = parts.second;
  lathe::fuzz::run_guarded([&] {
    lathe::Tokenizer t(lathe::tok::parse_hf_tokenizer_json(file, "tokenizer.json"));
    lathe::fuzz::exercise_tokenizer(t, text.empty() ? lathe::fuzz::kSampleText : text);
  });
  return 0;
}
