#include "serve/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "core/error.h"
#include "generate/decoder.h"

namespace lathe {

uint64_t SeqSignal::wait(uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu);
  cv.wait_for(lk, timeout, [&] { return version != seen; });
  return version;
}

void SeqSignal::bump() {
  {
    std::lock_guard lk(mu);
    ++version;
  }
  cv.notify_all();
}

SeqUpdate SeqHandle::take() {
  std::lock_guard lk(mu_);
  SeqUpdate out = std::move(pending_);
  pending_ = SeqUpdate{};
  return out;
}

void SeqHandle::push_prompt(std::vector<TokenLogprob> lp) {
  {
    std::lock_guard lk(mu_);
    pending_.prompt = std::move(lp);
  }
  signal_->bump();
}

void SeqHandle::push_token(TokenLogprob t) {
  {
    std::lock_guard lk(mu_);
    pending_.tokens.push_back(std::move(t));
  }
  signal_->bump();
}

void SeqHandle::finish(std::string reason, std::string error) {
  {
    std::lock_guard lk(mu_);
    pending_.finished = true;
    pending_.finish_reason = std::move(reason);
    pending_.error = std::move(error);
  }
  signal_->bump();
}

TokenLogprob token_logprob(const float* z, int64_t V, int32_t id, int k) {
  float mx = z[0];
  for (int64_t i = 1; i < V; ++i) mx = std::max(mx, z[i]);
  double sum = 0;  // in double: a 128K vocabulary's tail adds up in fp32 with 1e-4 error
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(z[i]) - mx);
  const double lse = double(mx) + std::log(sum);
  TokenLogprob t;
  t.id = id;
  t.logprob = float(double(z[id]) - lse);
  if (k > 0) {
    const int64_t n = std::min<int64_t>(k, V);
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + n, order.end(),
                      [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
    for (int64_t r = 0; r < n; ++r)
      t.top.emplace_back(order[size_t(r)], float(double(z[order[size_t(r)]]) - lse));
  }
  return t;
}

struct Scheduler::Seq {
  SeqSpec spec;
  std::shared_ptr<SeqHandle> handle;
  int32_t slot = -1;
  int64_t fed = 0;            // tokens in the cache
  int64_t generated = 0;      // tokens sampled and kept
  int64_t budget = 0;         // new tokens it may produce: max_tokens, within the context
  int32_t next = -1;          // the token to feed next (decoding)
  std::vector<int32_t> seen;  // prompt + output (repetition penalty)
  std::unordered_map<int32_t, int> counts;  // output token counts (OpenAI penalties)
  std::vector<TokenLogprob> prompt_lp;      // gathered over the prefill chunks
  SamplingRng rng{0};
  bool done = false;
  bool prefilling() const { return fed < int64_t(spec.prompt.size()); }
};

Scheduler::Scheduler(LlamaModel& model, Backend& be, const LoraBank* bank, SchedulerOptions options,
                     std::vector<int32_t> eos)
    : model_(model), be_(be), bank_(bank), opt_(options), eos_(std::move(eos)) {
  const int64_t ctx = model_.config().max_position_embeddings;
  context_ = opt_.context > 0 ? std::min(opt_.context, ctx) : ctx;
  LATHE_CHECK(opt_.slots >= 1, "--max-batch must be >= 1, got ", opt_.slots);
  LATHE_CHECK(opt_.step_tokens >= 1, "--prefill-chunk must be >= 1, got ", opt_.step_tokens);
  LATHE_CHECK(opt_.max_waiting >= 0, "--max-queue must be >= 0, got ", opt_.max_waiting);
  dec_ = std::make_unique<Decoder>(model_, be_, opt_.slots, context_, bank_);
  for (int64_t s = opt_.slots - 1; s >= 0; --s) free_slots_.push_back(int32_t(s));
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

void Scheduler::shutdown() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto* q : {&inbox_, &waiting_})
    for (auto& s : *q) s->handle->finish("", "the server is shutting down");
  for (auto& s : running_) s->handle->finish("", "the server is shutting down");
  inbox_.clear();
  waiting_.clear();
  running_.clear();
}

size_t Scheduler::kv_cache_bytes() const { return dec_->cache().bytes(); }

std::optional<std::vector<std::shared_ptr<SeqHandle>>> Scheduler::submit(
    std::vector<SeqSpec> specs) {
  std::vector<std::shared_ptr<SeqHandle>> handles;
  {
    std::lock_guard lk(mu_);
    if (stop_ || in_system_ + int64_t(specs.size()) > opt_.slots + opt_.max_waiting)
      return std::nullopt;
    auto signal = std::make_shared<SeqSignal>();
    for (SeqSpec& spec : specs) {
      auto s = std::make_unique<Seq>();
      s->spec = std::move(spec);
      s->handle = std::make_shared<SeqHandle>(signal);
      handles.push_back(s->handle);
      inbox_.push_back(std::move(s));
    }
    in_system_ += int64_t(specs.size());
    counters_.waiting += int64_t(specs.size());
  }
  cv_.notify_all();
  return handles;
}

void Scheduler::end(Seq& s, const char* reason, const std::string& error) {
  s.handle->finish(reason, error);
  s.done = true;
  if (s.slot >= 0) free_slots_.push_back(s.slot);
  s.slot = -1;
  std::lock_guard lk(mu_);
  --in_system_;
}

void Scheduler::loop() {
  while (true) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk,
               [&] { return stop_ || !inbox_.empty() || !running_.empty() || !waiting_.empty(); });
      if (stop_) return;
      while (!inbox_.empty()) {
        waiting_.push_back(std::move(inbox_.front()));
        inbox_.pop_front();
      }
    }
    try {
      admit();
      if (!running_.empty()) step();
    } catch (const std::exception& e) {
      // A failed step (out of memory, a backend error) ends the sequences in it, not the
      // server; their slots are free again, and the cache positions are rewritten by the
      // next sequence that takes each slot.
      for (auto& s : running_)
        if (!s->done) end(*s, "", e.what());
      running_.clear();
    }
    counters_.waiting = int64_t(waiting_.size());
    counters_.running = int64_t(running_.size());
  }
}

void Scheduler::admit() {
  // Cancelled before they ran: gone without a slot.
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if ((*it)->handle->cancelled()) {
      end(**it, "cancelled");
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  while (!waiting_.empty() && !free_slots_.empty()) {
    std::unique_ptr<Seq> s = std::move(waiting_.front());
    waiting_.pop_front();
    const int64_t L = int64_t(s->spec.prompt.size());
    s->budget = std::max<int64_t>(0, std::min(s->spec.max_tokens, context_ - L));
    if (L == 0 || L > context_) {  // the HTTP layer refuses these; never run them
      end(*s, "", str_cat("the prompt has ", L, " tokens; the context holds ", context_));
      continue;
    }
    if (s->budget == 0 && !s->spec.prompt_logprobs) {  // nothing to compute
      end(*s, "length");
      continue;
    }
    s->slot = free_slots_.back();
    free_slots_.pop_back();
    s->rng = SamplingRng(s->spec.seed);
    if (s->spec.sampling.repetition_penalty != 1.0f) s->seen = s->spec.prompt;
    running_.push_back(std::move(s));
  }
}

void Scheduler::step() {
  const int64_t V = model_.config().vocab_size;
  for (auto& s : running_)
    if (!s->done && s->handle->cancelled()) end(*s, "cancelled");
  std::erase_if(running_, [](const auto& s) { return s->done; });
  if (running_.empty()) return;

  // The rows of this step: one per decoding sequence, then prompt chunks in arrival order
  // up to step_tokens, each row with the sequence it belongs to.
  struct Row {
    Seq* seq;
    int32_t id, pos;
    bool logits;
  };
  std::vector<Row> rows;
  int64_t logit_rows = 0;
  for (auto& s : running_)
    if (!s->prefilling()) {
      rows.push_back({s.get(), s->next, int32_t(s->fed), true});
      ++logit_rows;
    }
  const int64_t max_logit_rows = std::max<int64_t>(1, opt_.max_logit_floats / V);
  int64_t budget = opt_.step_tokens;
  for (auto& s : running_) {
    if (!s->prefilling() || budget <= 0) continue;
    const int64_t L = int64_t(s->spec.prompt.size());
    int64_t take = std::min(L - s->fed, budget);
    if (s->spec.prompt_logprobs) {
      take = std::min(take, max_logit_rows - logit_rows);
      if (take <= 0) continue;
    }
    for (int64_t j = s->fed; j < s->fed + take; ++j) {
      const bool last = j == L - 1;
      const bool want = s->spec.prompt_logprobs || last;
      rows.push_back({s.get(), s->spec.prompt[size_t(j)], int32_t(j), want});
      logit_rows += want;
    }
    budget -= take;
  }
  if (rows.empty()) return;
  // Rows of one adapter side by side, so each adapter multiplies one block of rows. The
  // sort is stable: a sequence's prompt rows stay in position order.
  if (bank_)
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      return a.seq->spec.adapter < b.seq->spec.adapter;
    });

  const size_t M = rows.size();
  std::vector<int32_t> ids(M), slot(M), pos(M), adapter(M);
  std::vector<int64_t> wanted;
  for (size_t r = 0; r < M; ++r) {
    ids[r] = rows[r].id;
    slot[r] = rows[r].seq->slot;
    pos[r] = rows[r].pos;
    adapter[r] = rows[r].seq->spec.adapter;
    if (rows[r].logits) wanted.push_back(int64_t(r));
  }
  logits_.resize(wanted.size() * size_t(V));
  dec_->forward(ids.data(), slot.data(), pos.data(), int64_t(M), wanted, logits_.data(),
                bank_ ? adapter.data() : nullptr);

  size_t k = 0;  // index into wanted / logits_
  int64_t prompt_rows = 0;
  for (size_t r = 0; r < M; ++r) {
    Seq& s = *rows[r].seq;
    float* z = rows[r].logits ? logits_.data() + k++ * size_t(V) : nullptr;
    const int64_t L = int64_t(s.spec.prompt.size());
    if (s.done) continue;
    if (!s.prefilling()) {  // a decode row
      s.fed += 1;
      sample_into(s, z);
      continue;
    }
    ++prompt_rows;
    const int64_t p = rows[r].pos;
    s.fed = p + 1;
    if (s.spec.prompt_logprobs && p + 1 < L)
      s.prompt_lp.push_back(
          token_logprob(z, V, s.spec.prompt[size_t(p + 1)], std::max(0, s.spec.logprobs)));
    if (p + 1 == L) {  // the prompt is in: its last row's logits give the first token
      if (s.spec.prompt_logprobs) s.handle->push_prompt(std::move(s.prompt_lp));
      if (s.budget == 0) {
        end(s, "length");
      } else {
        sample_into(s, z);
      }
    }
  }
  std::erase_if(running_, [](const auto& s) { return s->done; });
  counters_.prompt_tokens += prompt_rows;
  counters_.steps += 1;
  counters_.step_rows += int64_t(M);
}

void Scheduler::sample_into(Seq& s, float* z) {
  const int64_t V = model_.config().vocab_size;
  const SeqSpec& sp = s.spec;
  // The log-probabilities are of the model's own distribution, taken before sampling
  // edits the logits (vLLM's default); the chosen token's is read after the draw.
  std::vector<float> raw;
  if (sp.logprobs >= 0) raw.assign(z, z + V);
  if (sp.frequency_penalty != 0 || sp.presence_penalty != 0)
    for (const auto& [id, n] : s.counts)
      z[id] -= float(n) * sp.frequency_penalty + sp.presence_penalty;
  const int32_t t = sample_next(z, V, sp.sampling, s.seen, s.rng);
  const auto is = [t](const std::vector<int32_t>& v) {
    return std::find(v.begin(), v.end(), t) != v.end();
  };
  if ((!sp.ignore_eos && is(eos_)) || is(sp.stop_tokens)) {
    if (sp.logprobs >= 0) {
      TokenLogprob lp = token_logprob(raw.data(), V, t, sp.logprobs);
      lp.ends = true;
      s.handle->push_token(std::move(lp));
    }
    end(s, "stop");
    return;
  }
  TokenLogprob lp;
  if (sp.logprobs >= 0) {
    lp = token_logprob(raw.data(), V, t, sp.logprobs);
  } else {
    lp.id = t;
  }
  s.handle->push_token(std::move(lp));
  s.generated += 1;
  counters_.generated_tokens += 1;
  if (sp.frequency_penalty != 0 || sp.presence_penalty != 0) s.counts[t] += 1;
  if (sp.sampling.repetition_penalty != 1.0f) s.seen.push_back(t);
  if (s.generated >= s.budget) {
    end(s, "length");
    return;
  }
  s.next = t;
}

}  // namespace lathe
