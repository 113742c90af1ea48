// Hyperparameters of a Llama-family model, as Hugging Face's config.json names them.
#pragma once
#include <cstdint>
#include <string>

namespace lathe {

struct RopeScaling {
  std::string type;  // "" (none) or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  int64_t hidden_size = 0;          // C
  int64_t intermediate_size = 0;    // I
  int64_t num_hidden_layers = 0;    // L
  int64_t num_attention_heads = 0;  // H
  int64_t num_key_value_heads = 0;  // KV (H for MHA, 1 for MQA)
  int64_t head_dim = 0;             // D (defaults to C / H)
  int64_t vocab_size = 0;           // V
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;  // -1 when config.json says null; the first id of a list
  int64_t eos_token_id = 2;
  std::string torch_dtype = "float32";  // as stored; informational

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
};

// Parses config.json; errors name the file and the key. Checks that the sizes are consistent.
LlamaConfig llama_config_from_json_file(const std::string& path);
LlamaConfig llama_config_from_json_text(const std::string& text, const std::string& origin);
// Writes config.json as transformers expects it (architectures, model_type "llama", dtype).
std::string llama_config_to_json_text(const LlamaConfig& cfg, const std::string& torch_dtype);

}  // namespace lathe
