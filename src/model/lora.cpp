#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"

namespace lathe {

const char* proj_name(Proj p) {
  static const char* names[kNumProj] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                        "gate_proj", "up_proj", "down_proj"};
  return names[int(p)];
}

const char* proj_parent(Proj p) { return int(p) <= int(Proj::O) ? "self_attn" : "mlp"; }

bool LoraSpec::targets_proj(Proj p) const {
  return std::find(targets.begin(), targets.end(), p) != targets.end();
}

std::vector<Proj> parse_lora_targets(const std::vector<std::string>& names) {
  LATHE_CHECK(!names.empty(), "peft.target_modules is empty: name the projections to adapt, e.g. "
                              "[q_proj, v_proj], or all-linear");
  std::vector<bool> on(kNumProj, false);
  for (const std::string& n : names) {
    if (n == "all-linear" || n == "all_linear") {
      std::fill(on.begin(), on.end(), true);
      continue;
    }
    bool found = false;
    for (int p = 0; p < kNumProj; ++p)
      if (n == proj_name(Proj(p))) on[size_t(p)] = found = true;
    LATHE_CHECK(found, "peft.target_modules: unknown module '", n,
                "'; Llama's are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj "
                "(or all-linear)");
  }
  std::vector<Proj> out;
  for (int p = 0; p < kNumProj; ++p)
    if (on[size_t(p)]) out.push_back(Proj(p));
  return out;
}

std::vector<std::string> lora_target_names(const std::vector<Proj>& targets) {
  std::vector<std::string> out;
  for (Proj p : targets) out.emplace_back(proj_name(p));
  return out;
}

static std::string module_path(const LoraEntry& e) {
  return str_cat("base_model.model.model.layers.", e.layer, ".", proj_parent(e.proj), ".",
                 proj_name(e.proj));
}
std::string LoraEntry::a_name() const { return module_path(*this) + ".lora_A.weight"; }
std::string LoraEntry::b_name() const { return module_path(*this) + ".lora_B.weight"; }

LoraTable make_lora_table(const LlamaConfig& cfg, const LoraSpec& spec) {
  LATHE_CHECK(spec.r >= 1, "peft.r must be >= 1");
  LoraTable t;
  t.spec = spec;
  const int64_t C = cfg.hidden_size, I = cfg.intermediate_size;
  const int64_t QD = cfg.q_dim(), KD = cfg.kv_dim(), S = QD + 2 * KD;
  t.by_layer.resize(size_t(cfg.num_hidden_layers));
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    for (Proj p : spec.targets) {
      LoraEntry e;
      e.layer = l;
      e.proj = p;
      switch (p) {
        case Proj::Q: e.in = C, e.out = QD, e.out_col = 0, e.fused_out = S; break;
        case Proj::K: e.in = C, e.out = KD, e.out_col = QD, e.fused_out = S; break;
        case Proj::V: e.in = C, e.out = KD, e.out_col = QD + KD, e.fused_out = S; break;
        case Proj::O: e.in = QD, e.out = C, e.out_col = 0, e.fused_out = C; break;
        case Proj::Gate: e.in = C, e.out = I, e.out_col = 0, e.fused_out = 2 * I; break;
        case Proj::Up: e.in = C, e.out = I, e.out_col = I, e.fused_out = 2 * I; break;
        case Proj::Down: e.in = I, e.out = C, e.out_col = 0, e.fused_out = C; break;
      }
      // r comes from a config or adapter_config.json: sizes are checked, not wrapped.
      int64_t a_size = 0, b_size = 0;
      size_t total = 0;
      LATHE_CHECK(!__builtin_mul_overflow(spec.r, e.in, &a_size) &&
                      !__builtin_mul_overflow(e.out, spec.r, &b_size) &&
                      !__builtin_add_overflow(t.total, size_t(a_size), &total) &&
                      !__builtin_add_overflow(total, size_t(b_size), &total),
                  "peft.r=", spec.r, " is too large: the LoRA adapter's size overflows");
      e.a_offset = t.total;
      e.b_offset = t.total + size_t(a_size);
      t.total = total;
      t.by_layer[size_t(l)].push_back(t.entries.size());
      t.entries.push_back(e);
    }
  }
  return t;
}

void init_lora_weights(const LoraTable& t, float* params, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const LoraEntry& e : t.entries) {
    const float bound = float(1.0 / std::sqrt(double(e.in)));
    std::uniform_real_distribution<float> u(-bound, bound);
    for (int64_t i = 0; i < t.spec.r * e.in; ++i) params[e.a_offset + size_t(i)] = u(rng);
    std::fill_n(params + e.b_offset, size_t(e.out * t.spec.r), 0.0f);
  }
}

}  // namespace lathe
