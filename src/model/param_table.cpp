#include "model/param_table.h"

namespace lathe {

const ParamEntry* ParamTable::find(const std::string& name) const {
  for (const ParamEntry& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

ParamTable make_param_table(const LlamaConfig& c) {
  ParamTable t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool matmul) {
    ParamEntry e{name, shape, t.total, 1, matmul};
    for (int64_t d : shape) e.numel *= size_t(d);
    t.total += e.numel;
    t.entries.push_back(e);
    return e.offset;
  };
  const int64_t C = c.hidden_size, I = c.intermediate_size;
  t.embed = add("model.embed_tokens.weight", {c.vocab_size, C}, false);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerOffsets o{};
    o.ln1 = add(p + "input_layernorm.weight", {C}, false);
    o.wqkv = add(p + "self_attn.q_proj.weight", {c.q_dim(), C}, true);
    add(p + "self_attn.k_proj.weight", {c.kv_dim(), C}, true);
    add(p + "self_attn.v_proj.weight", {c.kv_dim(), C}, true);
    o.wo = add(p + "self_attn.o_proj.weight", {C, c.q_dim()}, true);
    o.ln2 = add(p + "post_attention_layernorm.weight", {C}, false);
    o.wgu = add(p + "mlp.gate_proj.weight", {I, C}, true);
    add(p + "mlp.up_proj.weight", {I, C}, true);
    o.wd = add(p + "mlp.down_proj.weight", {C, I}, true);
    t.layers.push_back(o);
  }
  t.final_norm = add("model.norm.weight", {C}, false);
  t.lm_head = c.tie_word_embeddings ? t.embed : add("lm_head.weight", {c.vocab_size, C}, true);
  return t;
}

int64_t matmul_params(const LlamaConfig& c) {
  const int64_t C = c.hidden_size;
  const int64_t per_layer = C * (c.q_dim() + 2 * c.kv_dim()) + c.q_dim() * C +
                            3 * C * c.intermediate_size;
  return per_layer * c.num_hidden_layers + c.vocab_size * C;
}

double train_flops_per_token(const LlamaConfig& c, int64_t seq_len) {
  return 6.0 * double(matmul_params(c)) +
         12.0 * double(c.num_hidden_layers * c.num_attention_heads * c.head_dim * seq_len);
}

double lora_train_flops_per_token(const LlamaConfig& c, int64_t seq_len, size_t lora_params) {
  return 4.0 * double(matmul_params(c)) + 6.0 * double(lora_params) +
         12.0 * double(c.num_hidden_layers * c.num_attention_heads * c.head_dim * seq_len);
}

}  // namespace lathe
