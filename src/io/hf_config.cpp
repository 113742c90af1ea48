// config.json parsing and writing for Llama models (declared in model/llama_config.h).
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "core/json_number.h"
#include "model/llama_config.h"

namespace lathe {
namespace {

using nlohmann::json;

// Typed access to one JSON object; every message names the origin and the full key.
class Reader {
 public:
  Reader(const json& obj, const std::string& origin, std::string prefix = "")
      : obj_(obj), origin_(origin), prefix_(std::move(prefix)) {}

  bool has(const char* key) const { return obj_.contains(key); }

  // Absent or null: the key is not set.
  const json* find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }

  const json& require(const char* key) const {
    auto it = obj_.find(key);
    LATHE_CHECK(it != obj_.end(), origin_, ": missing required key '", prefix_, key, "'");
    return *it;
  }

  [[noreturn]] void wrong_type(const char* key, const char* expected, const json& v) const {
    fail(origin_, ": key '", prefix_, key, "' must be ", expected, ", got ", v.type_name(), " ",
         v.dump());
  }

  int64_t as_int(const char* key, const json& v) const {
    const auto x = json_integer<int64_t>(v);
    if (!x) wrong_type(key, "an integer", v);
    return *x;
  }
  double as_double(const char* key, const json& v) const {
    if (!v.is_number()) wrong_type(key, "a number", v);
    return v.get<double>();
  }
  std::string as_string(const char* key, const json& v) const {
    if (!v.is_string()) wrong_type(key, "a string", v);
    return v.get<std::string>();
  }

  int64_t req_int(const char* key) const { return as_int(key, require(key)); }
  double req_double(const char* key) const { return as_double(key, require(key)); }
  int64_t opt_int(const char* key, int64_t dflt) const {
    const json* v = find(key);
    return v ? as_int(key, *v) : dflt;
  }
  double opt_double(const char* key, double dflt) const {
    const json* v = find(key);
    return v ? as_double(key, *v) : dflt;
  }
  bool opt_bool(const char* key, bool dflt) const {
    const json* v = find(key);
    if (!v) return dflt;
    if (!v->is_boolean()) wrong_type(key, "true or false", *v);
    return v->get<bool>();
  }

  // bos/eos ids: an integer, a list (Llama 3.1 lists several eos ids; the first is the one
  // generation appends), or null for "none", stored as -1.
  int64_t token_id(const char* key, int64_t dflt) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) return dflt;
    if (it->is_null()) return -1;
    if (it->is_array()) {
      for (const json& e : *it) {
        if (!json_integer<int32_t>(e))
          wrong_type(key, "an integer, a list of integers or null", *it);
      }
      return it->empty() ? -1 : *json_integer<int32_t>(it->front());
    }
    const auto id = json_integer<int32_t>(*it);
    if (!id) wrong_type(key, "an integer, a list of integers or null", *it);
    return *id;
  }

  void check_positive(const char* key, double v) const {
    LATHE_CHECK(v > 0, origin_, ": '", prefix_, key, "' must be positive, got ", v);
  }

 private:
  const json& obj_;
  const std::string& origin_;
  std::string prefix_;
};

RopeScaling parse_rope_scaling(const Reader& r, const std::string& origin) {
  RopeScaling rs;
  const json* v = r.find("rope_scaling");
  if (!v) return rs;
  if (!v->is_object()) r.wrong_type("rope_scaling", "an object or null", *v);
  Reader s(*v, origin, "rope_scaling.");
  // transformers renamed "type" to "rope_type"; configs in the wild carry either.
  std::string type;
  if (s.find("rope_type")) {
    type = s.as_string("rope_type", *s.find("rope_type"));
  } else if (s.find("type")) {
    type = s.as_string("type", *s.find("type"));
  } else {
    fail(origin, ": rope_scaling has neither 'rope_type' nor 'type'");
  }
  if (type == "default") return rs;
  LATHE_CHECK(type == "llama3", origin, ": rope_scaling type '", type,
              "' is not supported (lathe supports 'llama3' and 'default')");
  rs.type = type;
  rs.factor = s.req_double("factor");
  rs.low_freq_factor = s.req_double("low_freq_factor");
  rs.high_freq_factor = s.req_double("high_freq_factor");
  rs.original_max_position_embeddings = s.req_int("original_max_position_embeddings");
  s.check_positive("factor", rs.factor);
  s.check_positive("low_freq_factor", rs.low_freq_factor);
  s.check_positive("original_max_position_embeddings", double(rs.original_max_position_embeddings));
  // The llama3 ramp divides by their difference.
  LATHE_CHECK(rs.high_freq_factor > rs.low_freq_factor, origin, ": rope_scaling.high_freq_factor (",
              rs.high_freq_factor, ") must be larger than rope_scaling.low_freq_factor (",
              rs.low_freq_factor, ")");
  return rs;
}

}  // namespace

LlamaConfig llama_config_from_json_text(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(origin, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(origin, ": expected a JSON object, got ", j.type_name());
  Reader r(j, origin);
  if (const json* mt = r.find("model_type")) {
    std::string type = r.as_string("model_type", *mt);
    LATHE_CHECK(type == "llama", origin, ": model_type is '", type,
                "'; lathe supports only 'llama' models");
  }
  LlamaConfig c;
  c.hidden_size = r.req_int("hidden_size");
  c.intermediate_size = r.req_int("intermediate_size");
  c.num_hidden_layers = r.req_int("num_hidden_layers");
  c.num_attention_heads = r.req_int("num_attention_heads");
  c.vocab_size = r.req_int("vocab_size");
  r.check_positive("hidden_size", double(c.hidden_size));
  r.check_positive("intermediate_size", double(c.intermediate_size));
  r.check_positive("num_hidden_layers", double(c.num_hidden_layers));
  r.check_positive("num_attention_heads", double(c.num_attention_heads));
  r.check_positive("vocab_size", double(c.vocab_size));

  c.num_key_value_heads = r.opt_int("num_key_value_heads", c.num_attention_heads);
  r.check_positive("num_key_value_heads", double(c.num_key_value_heads));
  LATHE_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, origin, ": num_attention_heads (",
              c.num_attention_heads, ") must be a multiple of num_key_value_heads (",
              c.num_key_value_heads, ")");
  if (r.find("head_dim")) {
    c.head_dim = r.opt_int("head_dim", 0);
    r.check_positive("head_dim", double(c.head_dim));
  } else {
    LATHE_CHECK(c.hidden_size % c.num_attention_heads == 0, origin, ": hidden_size (",
                c.hidden_size, ") is not a multiple of num_attention_heads (",
                c.num_attention_heads, ") and head_dim is not set");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.max_position_embeddings = r.opt_int("max_position_embeddings", c.max_position_embeddings);
  r.check_positive("max_position_embeddings", double(c.max_position_embeddings));
  c.rms_norm_eps = r.opt_double("rms_norm_eps", c.rms_norm_eps);
  r.check_positive("rms_norm_eps", c.rms_norm_eps);
  c.rope_theta = r.opt_double("rope_theta", c.rope_theta);
  r.check_positive("rope_theta", c.rope_theta);
  c.rope_scaling = parse_rope_scaling(r, origin);
  c.tie_word_embeddings = r.opt_bool("tie_word_embeddings", false);
  c.bos_token_id = r.token_id("bos_token_id", c.bos_token_id);
  c.eos_token_id = r.token_id("eos_token_id", c.eos_token_id);
  // Newer transformers write "dtype" instead of "torch_dtype".
  const char* dtype_key = r.has("torch_dtype") ? "torch_dtype" : "dtype";
  if (const json* d = r.find(dtype_key)) c.torch_dtype = r.as_string(dtype_key, *d);
  return c;
}

LlamaConfig llama_config_from_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", path, ": ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return llama_config_from_json_text(ss.str(), path);
}

std::string llama_config_to_json_text(const LlamaConfig& cfg, const std::string& torch_dtype) {
  auto token = [](int64_t id) { return id < 0 ? json(nullptr) : json(id); };
  json rope = nullptr;
  if (cfg.rope_scaling.type == "llama3") {
    rope = {
        {"rope_type", "llama3"},
        {"factor", cfg.rope_scaling.factor},
        {"low_freq_factor", cfg.rope_scaling.low_freq_factor},
        {"high_freq_factor", cfg.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", cfg.rope_scaling.original_max_position_embeddings}};
  }
  // json sorts keys, as transformers' to_json_string does.
  json j = {
      {"architectures", json::array({"LlamaForCausalLM"})},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"bos_token_id", token(cfg.bos_token_id)},
      {"eos_token_id", token(cfg.eos_token_id)},
      {"head_dim", cfg.head_dim},
      {"hidden_act", "silu"},
      {"hidden_size", cfg.hidden_size},
      {"initializer_range", 0.02},
      {"intermediate_size", cfg.intermediate_size},
      {"max_position_embeddings", cfg.max_position_embeddings},
      {"mlp_bias", false},
      {"model_type", "llama"},
      {"num_attention_heads", cfg.num_attention_heads},
      {"num_hidden_layers", cfg.num_hidden_layers},
      {"num_key_value_heads", cfg.num_key_value_heads},
      {"pretraining_tp", 1},
      {"rms_norm_eps", cfg.rms_norm_eps},
      {"rope_scaling", rope},
      {"rope_theta", cfg.rope_theta},
      {"tie_word_embeddings", cfg.tie_word_embeddings},
      {"torch_dtype", torch_dtype.empty() ? cfg.torch_dtype : torch_dtype},
      {"transformers_version", "4.45.0"},
      {"use_cache", true},
      {"vocab_size", cfg.vocab_size},
  };
  return j.dump(2) + "\n";
}

}  // namespace lathe
