// HF Llama folder -> GGUF (gguf_export.h). The conversion rules and names are those of
// llama.cpp's convert_hf_to_gguf.py (conversion/base.py, conversion/llama.py) and
// llama-quantize (src/llama-quant.cpp) as vendored by llama-cpp-python 0.3.36.
#include "io/gguf_export.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/dtype.h"
#include "core/error.h"
#include "io/gguf_vocab.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "model/llama_config.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

// GGML_QNT_VERSION of ggml.h; the converter writes it into every file.
constexpr uint32_t kQuantizationVersion = 2;

const std::vector<GgufFileType>& file_types() {
  // general.file_type is llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_BF16 32, MOSTLY_Q8_0 7,
  // MOSTLY_Q4_0 2, and for q4_k MOSTLY_Q4_K_M 15, which llama-quantize's type name "Q4_K"
  // stands for.
  static const std::vector<GgufFileType> types = {
      {"f32", GgmlType::F32, 0},   {"f16", GgmlType::F16, 1},   {"bf16", GgmlType::BF16, 32},
      {"q8_0", GgmlType::Q8_0, 7}, {"q4_0", GgmlType::Q4_0, 2}, {"q4_k", GgmlType::Q4_K, 15}};
  return types;
}

bool quantized(GgmlType t) { return ggml_block_size(t) > 1; }

// One tensor of the output: where its values come from and how they are laid out.
struct Planned {
  std::string name;                 // llama.cpp's name
  std::string hf;                   // the HF name it comes from ("" for rope_freqs)
  const TensorInfo* src = nullptr;  // nullptr: `values` holds it (rope_freqs)
  std::vector<float> values;
  std::vector<int64_t> shape;  // [rows, cols] or [n]
  int64_t permute_heads = 0;   // > 0: rows permuted for RoPE with this many heads
  GgmlType type = GgmlType::F32;
  std::string fallback;
};

// The type a tensor is stored in, and why it is not the requested one. The converter keeps
// 1-D tensors and norms in f32; a weight whose rows are not whole blocks falls back: q8_0
// to f16 (the converter's QuantError fallback), q4_K to q5_0 and any 32-block type to f16
// (llama-quantize's tensor_type_fallback).
GgmlType choose_type(const Planned& t, GgmlType wanted, std::string* why) {
  if (t.shape.size() < 2 || t.name.ends_with("_norm.weight")) return GgmlType::F32;
  const int64_t cols = t.shape.back();
  GgmlType type = wanted;
  if (cols % ggml_block_size(type) != 0 && type == GgmlType::Q4_K) {
    *why = str_cat(cols, " values per row is not a multiple of 256 (q4_K's block): q5_0");
    type = GgmlType::Q5_0;
  }
  if (cols % ggml_block_size(type) != 0) {
    *why = str_cat(cols, " values per row is not a multiple of ", ggml_block_size(type), " (",
                   ggml_type_name(type), "'s block): f16");
    type = GgmlType::F16;
  }
  return type;
}

// LlamaModel.generate_extra_tensors for llama3 rope scaling: one factor per rotated pair,
// in float32 step by step as the converter's torch code computes it. torch evaluates
// `number / tensor` as tensor.reciprocal() * number, hence the reciprocals; its pow here is
// the correctly rounded one.
std::vector<float> llama3_rope_factors(const LlamaConfig& c) {
  const RopeScaling& rs = c.rope_scaling;
  const float factor = float(rs.factor), low = float(rs.low_freq_factor);
  const float high = float(rs.high_freq_factor);
  const float old_len = float(rs.original_max_position_embeddings);
  const float low_wavelen = float(double(rs.original_max_position_embeddings) / rs.low_freq_factor);
  const float high_wavelen =
      float(double(rs.original_max_position_embeddings) / rs.high_freq_factor);
  const float two_pi = float(2 * M_PI);
  std::vector<float> out;
  for (int64_t i = 0; i < c.head_dim; i += 2) {
    const float e = float(i) / float(c.head_dim);
    const float freq = 1.0f / float(std::pow(c.rope_theta, double(e)));
    const float wavelen = (1.0f / freq) * two_pi;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(factor);
    } else {
      const float smooth = ((1.0f / wavelen) * old_len - low) / float(double(high) - double(low));
      out.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return out;
}

// model_weight_count_rounded_notation(n, min_digits=2): "260K", "1.5B".
std::string size_label(int64_t n) {
  double scaled;
  char suffix;
  if (n > 1e12) {
    scaled = double(n) * 1e-12, suffix = 'T';
  } else if (n > 1e9) {
    scaled = double(n) * 1e-9, suffix = 'B';
  } else if (n > 1e6) {
    scaled = double(n) * 1e-6, suffix = 'M';
  } else {
    scaled = double(n) * 1e-3, suffix = 'K';
  }
  const long long whole = std::llround(std::nearbyint(scaled));  // Python's round(): to even
  const int digits = whole == 0 ? 0 : int(std::to_string(whole).size());
  const int fix = std::max(2 - digits, 0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%c", fix, scaled, suffix);
  return buf;
}

std::string folder_name(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// gguf-py's Metadata.id_to_title, which the converter applies to the folder's name: "-" to
// " ", and each all-lowercase word that is not a version or a number title-cased
// ("llama2-tok" -> "Llama2 Tok", "stories260K" unchanged).
std::string id_to_title(const std::string& id) {
  std::string spaced = id;
  std::replace(spaced.begin(), spaced.end(), '-', ' ');
  std::istringstream words(spaced);
  std::string out, w;
  static const std::regex keep(R"(^(v\d+(?:\.\d+)*|\d.*)$)");
  while (words >> w) {
    const bool has_lower =
        std::any_of(w.begin(), w.end(), [](char c) { return std::islower(uint8_t(c)); });
    const bool has_upper =
        std::any_of(w.begin(), w.end(), [](char c) { return std::isupper(uint8_t(c)); });
    if (has_lower && !has_upper && !std::regex_match(w, keep)) {
      bool after_letter = false;
      for (char& c : w) {
        const bool letter = std::isalpha(uint8_t(c)) != 0;
        if (letter) c = char(after_letter ? std::tolower(uint8_t(c)) : std::toupper(uint8_t(c)));
        after_letter = letter;
      }
    }
    out += (out.empty() ? "" : " ") + w;
  }
  return out;
}

// HF tensor name -> llama.cpp's, the shape config.json implies, and the RoPE permutation.
struct NameRule {
  std::string hf, gguf;
  std::vector<int64_t> shape;
  int64_t permute_heads = 0;
};

std::vector<NameRule> name_rules(const LlamaConfig& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  std::vector<NameRule> r = {{"model.embed_tokens.weight", "token_embd.weight", {V, C}}};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string hf = "model.layers." + std::to_string(l) + ".";
    const std::string g = "blk." + std::to_string(l) + ".";
    r.push_back({hf + "input_layernorm.weight", g + "attn_norm.weight", {C}});
    r.push_back({hf + "self_attn.q_proj.weight",
                 g + "attn_q.weight",
                 {c.q_dim(), C},
                 c.num_attention_heads});
    r.push_back({hf + "self_attn.k_proj.weight",
                 g + "attn_k.weight",
                 {c.kv_dim(), C},
                 c.num_key_value_heads});
    r.push_back({hf + "self_attn.v_proj.weight", g + "attn_v.weight", {c.kv_dim(), C}});
    r.push_back({hf + "self_attn.o_proj.weight", g + "attn_output.weight", {C, c.q_dim()}});
    r.push_back({hf + "post_attention_layernorm.weight", g + "ffn_norm.weight", {C}});
    r.push_back({hf + "mlp.gate_proj.weight", g + "ffn_gate.weight", {I, C}});
    r.push_back({hf + "mlp.up_proj.weight", g + "ffn_up.weight", {I, C}});
    r.push_back({hf + "mlp.down_proj.weight", g + "ffn_down.weight", {C, I}});
  }
  r.push_back({"model.norm.weight", "output_norm.weight", {C}});
  r.push_back({"lm_head.weight", "output.weight", {V, C}});
  return r;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::vector<Planned> plan_tensors(const std::string& dir, const LlamaConfig& c,
                                  const SafetensorsModel& st) {
  std::vector<Planned> out;
  if (c.rope_scaling.type == "llama3") {
    Planned p;
    p.name = "rope_freqs.weight";
    p.values = llama3_rope_factors(c);
    p.shape = {int64_t(p.values.size())};
    out.push_back(std::move(p));
  }
  std::set<std::string> known;
  for (const NameRule& rule : name_rules(c)) {
    known.insert(rule.hf);
    const TensorInfo* t = st.find(rule.hf);
    if (!t) {
      // Tied embeddings: no lm_head, llama.cpp multiplies by token_embd (the converter
      // writes output.weight only when the file has lm_head.weight).
      if (rule.hf == "lm_head.weight" && c.tie_word_embeddings) continue;
      fail(dir, ": tensor '", rule.hf, "' not found",
           rule.hf == "lm_head.weight" ? " (config.json has tie_word_embeddings false)" : "");
    }
    LATHE_CHECK(t->shape == rule.shape, t->file, ": tensor '", rule.hf, "' has shape ",
                shape_text(t->shape), ", config.json implies ", shape_text(rule.shape));
    Planned p;
    p.name = rule.gguf;
    p.hf = rule.hf;
    p.src = t;
    p.shape = rule.shape;
    p.permute_heads = rule.permute_heads;
    out.push_back(std::move(p));
  }
  for (const std::string& n : st.names()) {
    if (known.count(n) || n.ends_with(".rotary_emb.inv_freq"))
      continue;  // the converter drops these
    fail(dir, ": tensor '", n, "' has no llama.cpp name (GGUF export knows a Llama's embedding, ",
         "attention, MLP, norms and lm_head; biases and other layers are not supported)");
  }
  // The converter's order: generated tensors first, then the safetensors files by name and
  // each file's tensors by HF name (so an f32 export can equal its file byte for byte).
  std::stable_sort(out.begin(), out.end(), [](const Planned& a, const Planned& b) {
    if (!a.src || !b.src) return !a.src && b.src;
    const std::string fa = fs::path(a.src->file).filename().string();
    const std::string fb = fs::path(b.src->file).filename().string();
    return fa != fb ? fa < fb : a.hf < b.hf;
  });
  return out;
}

// Rows of a source tensor in f32, the RoPE permutation applied: output row r of head h
// (r = h * D + 2 * i + j) is HF row h * D + j * D/2 + i, i.e. the converter's
// reshape(heads, 2, D/2, cols).swapaxes(1, 2).
int64_t source_row(const Planned& t, int64_t r) {
  if (t.permute_heads <= 0) return r;
  const int64_t D = t.shape[0] / t.permute_heads;
  const int64_t h = r / D, within = r % D;
  return h * D + (within % 2) * (D / 2) + within / 2;
}

void fill_rows(const Planned& t, int64_t row0, int64_t rows, uint8_t* out, int threads) {
  const int64_t cols = t.shape.back();
  const size_t row_bytes = ggml_row_bytes(t.type, cols);
  if (!t.src) {
    ggml_quantize_row(t.type, t.values.data(), out, cols);
    return;
  }
  const auto* base = static_cast<const uint8_t*>(t.src->data);
  const size_t src_row_bytes = size_t(cols) * dtype_size(t.src->dtype);
  // Threads only where there is work for them: a stories260K tensor is done before a
  // parallel region would start on a busy machine.
  const bool parallel = rows * cols >= (int64_t(1) << 16);
#pragma omp parallel num_threads(threads) if (parallel)
  {
    std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(dynamic, 16)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t src = source_row(t, row0 + r);
      convert_to_f32(base + size_t(src) * src_row_bytes, t.src->dtype, row.data(), size_t(cols));
      ggml_quantize_row(t.type, row.data(), out + size_t(r) * row_bytes, cols);
    }
  }
}

}  // namespace

const std::vector<std::string>& gguf_file_type_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const GgufFileType& t : file_types()) n.push_back(t.name);
    return n;
  }();
  return names;
}

GgufFileType gguf_file_type(const std::string& name) {
  for (const GgufFileType& t : file_types())
    if (t.name == name) return t;
  std::string list;
  for (const std::string& n : gguf_file_type_names()) list += (list.empty() ? "" : ", ") + n;
  fail("--type ", name, " is not a GGUF type lathe writes; choose one of ", list);
}

GgufExportReport export_gguf(const std::string& model_dir, const std::string& out_path,
                             const GgufExportOptions& options) {
  const GgufFileType ftype = gguf_file_type(options.type);
  LATHE_CHECK(
      fs::is_directory(model_dir), model_dir,
      ": not a folder (expected an HF model folder: config.json, *.safetensors, tokenizer)");
  LATHE_CHECK(fs::exists(fs::path(model_dir) / "config.json"), model_dir,
              ": no config.json (expected an HF model folder: config.json, *.safetensors, "
              "tokenizer)");
  LATHE_CHECK(!fs::is_directory(out_path), out_path,
              ": is a folder; --gguf takes the path of the file to write");
  const std::string config_path = (fs::path(model_dir) / "config.json").string();
  const LlamaConfig c = llama_config_from_json_file(config_path);
  LATHE_CHECK(c.head_dim % 2 == 0, config_path, ": head_dim ", c.head_dim,
              " is odd; llama.cpp rotates pairs of values within a head (RoPE), so a GGUF needs ",
              "an even head_dim");
  const SafetensorsModel st(model_dir);
  std::vector<Planned> plan = plan_tensors(model_dir, c, st);

  // Types, and the check that the requested one fits some weight at all.
  bool any_quantized = false;
  for (Planned& t : plan) {
    t.type = choose_type(t, ftype.weights, &t.fallback);
    any_quantized |= quantized(t.type);
  }
  if (quantized(ftype.weights) && !any_quantized) {
    fail(model_dir, ": no weight of this model can be stored as ", ftype.name, ": its rows have ",
         c.hidden_size, " (hidden_size) or ", c.intermediate_size, " (intermediate_size) values, ",
         "and ", ftype.name, " needs a multiple of ",
         ftype.weights == GgmlType::Q4_K ? "32 (256 for q4_K itself, 32 for its q5_0 fallback)"
                                         : "32",
         "; every tensor would be f16. Export with --type f16 (or f32, bf16) instead");
  }

  GgufWriter w;
  GgufExportReport report;
  for (const Planned& t : plan) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    report.parameters += n;
  }
  w.add_string("general.architecture", "llama");
  w.add_string("general.type", "model");
  w.add_string("general.name",
               options.name.empty() ? id_to_title(folder_name(model_dir)) : options.name);
  w.add_string("general.size_label", size_label(report.parameters));
  w.add_u32("llama.block_count", uint32_t(c.num_hidden_layers));
  w.add_u32("llama.context_length", uint32_t(c.max_position_embeddings));
  w.add_u32("llama.embedding_length", uint32_t(c.hidden_size));
  w.add_u32("llama.feed_forward_length", uint32_t(c.intermediate_size));
  w.add_u32("llama.attention.head_count", uint32_t(c.num_attention_heads));
  w.add_u32("llama.attention.head_count_kv", uint32_t(c.num_key_value_heads));
  w.add_f32("llama.rope.freq_base", float(c.rope_theta));
  w.add_f32("llama.attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  // The converter reads config.json through transformers' LlamaConfig, which always has a
  // head_dim, so it always writes these.
  w.add_u32("llama.attention.key_length", uint32_t(c.head_dim));
  w.add_u32("llama.attention.value_length", uint32_t(c.head_dim));
  w.add_u32("general.file_type", ftype.file_type);
  w.add_u32("llama.vocab_size", uint32_t(c.vocab_size));
  w.add_u32("llama.rope.dimension_count", uint32_t(c.head_dim));
  w.add_u32("general.quantization_version", kQuantizationVersion);
  report.vocab = add_gguf_vocab(w, model_dir, c.vocab_size);

  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  for (const Planned& t : plan) {
    w.add_tensor(t.name, t.type, t.shape, [&t, threads](int64_t row0, int64_t rows, uint8_t* out) {
      fill_rows(t, row0, rows, out, threads);
    });
    report.tensors.push_back({t.name, t.shape, t.type, t.fallback});
  }
  const fs::path parent = fs::path(out_path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    LATHE_CHECK(!ec, "cannot create ", parent.string(), ": ", ec.message());
  }
  report.bytes = w.write(out_path);
  return report;
}

}  // namespace lathe
