// PEFT's adapter_config.json through read_peft_config, then the LoRA table it implies for
// a tiny model (sizes and offsets computed from the rank the file gives).
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_util.h"
#include "io/peft_adapter.h"
#include "model/lora.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = lathe::fuzz::scratch_dir() + "/adapter";
    std::filesystem::create_directories(d);
    return d;
  }();
  lathe::fuzz::write_file(dir + "/adapter_config.json", lathe::fuzz::as_text(data, size));
  lathe::fuzz::run_guarded([&] {
    const lathe::LoraSpec spec = lathe::read_peft_config(dir);
    lathe::LlamaConfig cfg;
    cfg.hidden_size = 8;
    cfg.intermediate_size = 16;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 2;
    cfg.num_key_value_heads = 1;
    cfg.head_dim = 4;
    cfg.vocab_size = 32;
    (void)lathe::make_lora_table(cfg, spec);
  });
  return 0;
}
