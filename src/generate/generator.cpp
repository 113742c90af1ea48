#include "generate/generator.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json.h"
#include "core/json_number.h"
#include "generate/decoder.h"
#include "generate/stop.h"
#include "tokenizer/tokenizer.h"

namespace lathe {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// An id or a list of ids, as HF writes eos_token_id; null or absent gives none.
std::vector<int32_t> ids_of(const nlohmann::json& v, const std::string& file) {
  std::vector<int32_t> out;
  if (v.is_number_integer()) {
    out.push_back(require_json_integer<int32_t>(v, file + ": eos_token_id"));
  } else if (v.is_array()) {
    for (const auto& x : v) {
      LATHE_CHECK(x.is_number_integer(), file, ": eos_token_id must be an id or a list of ids");
      out.push_back(require_json_integer<int32_t>(x, file + ": eos_token_id"));
    }
  } else if (!v.is_null()) {
    fail(file, ": eos_token_id must be an id or a list of ids, got ", v.type_name());
  }
  return out;
}

bool contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// One sequence being generated.
struct Seq {
  size_t index = 0;           // which prompt
  int32_t slot = 0;           // where its keys and values live in the cache
  int64_t cached = 0;         // tokens in the cache
  int64_t budget = 0;         // new tokens it may still produce in total
  int32_t next = -1;          // the token to feed next
  std::vector<int32_t> seen;  // prompt + output, for the repetition penalty
  SamplingRng rng{0};
};

}  // namespace

std::vector<int32_t> read_eos_token_ids(const std::string& model_dir) {
  for (const char* name : {"generation_config.json", "config.json"}) {
    const std::string path = model_dir + "/" + name;
    if (!std::filesystem::exists(path)) continue;
    std::ifstream in(path);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      fail(path, ": not valid JSON (", e.what(), ")");
    }
    if (j.contains("eos_token_id")) return ids_of(j["eos_token_id"], path);
  }
  return {};
}

Generator::Generator(LlamaModel& model, Backend& be, const Tokenizer* tokenizer)
    : model_(model), be_(be), tok_(tokenizer) {
  if (tok_ && tok_->eos_id() >= 0) eos_.push_back(tok_->eos_id());
}

std::vector<Generated> Generator::generate(const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerationOptions& o,
                                           std::function<void(size_t, int32_t)> on_token) {
  const LlamaConfig& cfg = model_.config();
  const SamplingParams sp{o.temperature, o.top_k, o.top_p, o.repetition_penalty};
  validate_sampling(sp);
  LATHE_CHECK(o.max_new_tokens >= 0, "max_new_tokens must be >= 0, got ", o.max_new_tokens);
  LATHE_CHECK(o.batch_size >= 1, "batch size must be >= 1, got ", o.batch_size);
  LATHE_CHECK(o.stop_strings.empty() || tok_,
              "stop strings need a tokenizer to decode the output: pass one to the Generator");
  const int64_t context = cfg.max_position_embeddings;
  const int64_t V = cfg.vocab_size;

  // Each sequence may grow to the model's context; the cache holds the longest one
  // (the last token generated is never fed back, hence the - 1).
  std::vector<int64_t> budget(prompts.size());
  int64_t capacity = 1;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int64_t n = int64_t(prompts[i].size());
    LATHE_CHECK(n > 0, "prompt ", i, " has no tokens: start it with BOS at least");
    LATHE_CHECK(n < context, "prompt ", i, " has ", n,
                " tokens, but the model's context (max_position_embeddings) is ", context,
                ": shorten the prompt");
    budget[i] = std::min<int64_t>(o.max_new_tokens, context - n);
    if (budget[i] > 0) capacity = std::max(capacity, n + budget[i] - 1);
  }
  std::vector<Generated> out(prompts.size());
  stats_ = GenerationStats{};
  stats_.prompts = int64_t(prompts.size());
  const int64_t slots = std::min<int64_t>(o.batch_size, std::max<size_t>(prompts.size(), 1));
  stats_.batch_slots = slots;
  stats_.cache_capacity = capacity;
  if (prompts.empty()) return out;

  Decoder dec(model_, be_, slots, capacity);
  std::vector<int32_t> free_slots;
  for (int64_t s = slots - 1; s >= 0; --s) free_slots.push_back(int32_t(s));
  std::vector<Seq> active;
  std::vector<float> logits;

  // Ends s: its text (unless a stop string already cut it) and its slot for the next prompt.
  auto finish = [&](Seq& s, const char* reason, std::string* text = nullptr) {
    Generated& g = out[s.index];
    g.stop_reason = reason;
    if (text)
      g.text = std::move(*text);
    else if (tok_)
      g.text = completion_text(*tok_, prompts[s.index], g.tokens);
    free_slots.push_back(s.slot);
    return false;
  };
  // Samples s's next token from its logits; returns false when s has finished.
  auto step = [&](Seq& s, float* z) {
    const int32_t t = sample_next(z, V, sp, s.seen, s.rng);
    if (!o.ignore_eos && contains(eos_, t)) return finish(s, "eos");
    if (contains(o.stop_tokens, t)) return finish(s, "stop_token");
    Generated& g = out[s.index];
    g.tokens.push_back(t);
    if (sp.repetition_penalty != 1.0f) s.seen.push_back(t);
    if (on_token) on_token(s.index, t);
    if (!o.stop_strings.empty()) {
      // The whole output is searched (not just its new end): decoding one more token can
      // change earlier characters (bytes of a split UTF-8 character).
      std::string text = completion_text(*tok_, prompts[s.index], g.tokens);
      const size_t at = find_stop_string(text, o.stop_strings);
      if (at != std::string::npos) {
        text.resize(at);
        return finish(s, "stop_string", &text);
      }
    }
    if (int64_t(g.tokens.size()) >= s.budget) return finish(s, "length");
    s.next = t;
    return true;
  };

  size_t queued = 0;
  while (true) {
    // Prefill: every free slot takes the next prompt; their prompts go through together.
    std::vector<Seq> admitted;
    while (!free_slots.empty() && queued < prompts.size()) {
      const size_t i = queued++;
      if (budget[i] == 0) {
        out[i].stop_reason = "length";
        continue;
      }
      Seq s;
      s.index = i;
      s.slot = free_slots.back();
      free_slots.pop_back();
      s.budget = budget[i];
      s.rng = SamplingRng(sequence_seed(o.seed, i));
      if (sp.repetition_penalty != 1.0f) s.seen = prompts[i];
      admitted.push_back(std::move(s));
    }
    if (!admitted.empty()) {
      const auto t0 = Clock::now();
      std::vector<int32_t> ids, slot, pos;
      std::vector<int64_t> last;
      for (Seq& s : admitted) {
        const std::vector<int32_t>& p = prompts[s.index];
        for (size_t j = 0; j < p.size(); ++j) {
          ids.push_back(p[j]);
          slot.push_back(s.slot);
          pos.push_back(int32_t(j));
        }
        last.push_back(int64_t(ids.size()) - 1);
        s.cached = int64_t(p.size());
      }
      logits.resize(last.size() * size_t(V));
      dec.forward(ids.data(), slot.data(), pos.data(), int64_t(ids.size()), last, logits.data());
      for (size_t k = 0; k < admitted.size(); ++k)
        if (step(admitted[k], logits.data() + k * size_t(V)))
          active.push_back(std::move(admitted[k]));
      stats_.prefill_tokens += int64_t(ids.size());
      stats_.prefill_s += seconds_since(t0);
    }
    if (active.empty()) {
      if (queued >= prompts.size()) break;
      continue;
    }

    // Decode: one token for every active sequence, in one forward.
    const auto t0 = Clock::now();
    const size_t M = active.size();
    std::vector<int32_t> ids(M), slot(M), pos(M);
    std::vector<int64_t> rows(M);
    for (size_t k = 0; k < M; ++k) {
      ids[k] = active[k].next;
      slot[k] = active[k].slot;
      pos[k] = int32_t(active[k].cached);
      rows[k] = int64_t(k);
    }
    logits.resize(M * size_t(V));
    dec.forward(ids.data(), slot.data(), pos.data(), int64_t(M), rows, logits.data());
    std::vector<Seq> still;
    for (size_t k = 0; k < M; ++k) {
      active[k].cached += 1;
      if (step(active[k], logits.data() + k * size_t(V))) still.push_back(std::move(active[k]));
    }
    active = std::move(still);
    stats_.decode_tokens += int64_t(M);
    stats_.decode_s += seconds_since(t0);
  }
  return out;
}

}  // namespace lathe
