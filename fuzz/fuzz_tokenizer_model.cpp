// tokenizer.model, both forms (a SentencePiece ModelProto or tiktoken base64 rank lines),
// through the loader, then the Tokenizer built from it encodes and decodes a sample text.
#include <cstdint>
#include <string>

#include "fuzz_tokenizer_text.h"
#include "fuzz_util.h"
#include "tokenizer/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  lathe::fuzz::run_guarded([&] {
    lathe::Tokenizer t(lathe::tok::parse_tokenizer_model(bytes, "tokenizer.model"));
    lathe::fuzz::exercise_tokenizer(t, lathe::fuzz::kSampleText);
  });
  return 0;
}
