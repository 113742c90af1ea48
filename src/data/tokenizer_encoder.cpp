// The TextEncoder the data formats use, over lathe::Tokenizer. Compiled only once the
// tokenizer exists, so the data layer builds (and its tests run) on their own.
#if __has_include("tokenizer/tokenizer.h")
#include "data/formats.h"
#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {

class TokenizerEncoder final : public TextEncoder {
 public:
  explicit TokenizerEncoder(const Tokenizer& tokenizer) : tok_(tokenizer) {}

  // Templates add BOS and EOS themselves, at the ends of the whole row, so pieces are
  // encoded without them.
  std::vector<int32_t> encode(std::string_view text) const override {
    return tok_.encode(text, /*add_special=*/false);
  }
  int32_t bos_id() const override { return tok_.bos_id(); }
  int32_t eos_id() const override { return tok_.eos_id(); }
  std::optional<int32_t> special(std::string_view token) const override { return tok_.find(token); }
  bool adds_bos() const override { return tok_.adds_bos(); }

 private:
  const Tokenizer& tok_;
};

}  // namespace

std::unique_ptr<TextEncoder> make_tokenizer_encoder(const Tokenizer& tokenizer) {
  return std::make_unique<TokenizerEncoder>(tokenizer);
}

}  // namespace lathe
#endif
