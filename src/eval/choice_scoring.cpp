#include "eval/choice_scoring.h"

#include <cctype>
#include <cmath>

#include "core/error.h"
#include "data/batch.h"
#include "tokenizer/tokenizer.h"

namespace lathe {

std::pair<std::vector<int32_t>, std::vector<int32_t>> choice_tokens(const Tokenizer& tok,
                                                                    const std::string& prompt,
                                                                    const std::string& choice) {
  // lm-eval's _encode_pair: "Answer: " + "yes" is scored as "Answer:" + " yes".
  size_t end = prompt.size();
  while (end > 0 && std::isspace(static_cast<unsigned char>(prompt[end - 1]))) --end;
  const std::string context = prompt.substr(0, end);
  const std::string continuation = prompt.substr(end) + choice;
  const std::vector<int32_t> whole = tok.encode(context + continuation, /*add_special=*/false);
  const std::vector<int32_t> ctx = tok.encode(context, /*add_special=*/false);
  const size_t n = std::min(ctx.size(), whole.size());
  return {ctx, std::vector<int32_t>(whole.begin() + std::ptrdiff_t(n), whole.end())};
}

std::vector<ChoiceResult> score_choices(LlamaModel& model, const Tokenizer& tok,
                                        const std::vector<ChoiceItem>& items) {
  const int64_t V = model.config().vocab_size, context = model.config().max_position_embeddings;
  std::vector<ChoiceResult> out(items.size());
  std::vector<float> logits;
  for (size_t i = 0; i < items.size(); ++i) {
    const ChoiceItem& item = items[i];
    LATHE_CHECK(!item.choices.empty(), "choice item ", i, " has no choices");
    for (const std::string& choice : item.choices) {
      auto [ctx, cont] = choice_tokens(tok, item.prompt, choice);
      LATHE_CHECK(!ctx.empty() && !cont.empty(), "choice item ", i, ": the prompt or the choice \"",
                  choice, "\" has no tokens");
      std::vector<int32_t> ids = ctx;
      ids.insert(ids.end(), cont.begin(), cont.end());
      const int64_t T = int64_t(ids.size());
      LATHE_CHECK(T <= context, "choice item ", i, " has ", T,
                  " tokens with its choice; the model's context is ", context);
      Batch b;
      b.B = 1, b.T = T;
      b.input_ids = ids;
      b.targets.assign(size_t(T), -100);
      for (int32_t t = 0; t < T; ++t) b.positions.push_back(t), b.doc_start.push_back(0);
      logits.resize(size_t(T * V));
      model.forward(b, logits.data());
      double sum = 0;
      for (int64_t t = int64_t(ctx.size()); t < T; ++t) {
        const float* z = logits.data() + (t - 1) * V;  // the row that predicts token t
        float mx = z[0];
        for (int64_t v = 1; v < V; ++v) mx = std::max(mx, z[v]);
        double s = 0;
        for (int64_t v = 0; v < V; ++v) s += std::exp(double(z[v]) - mx);
        sum += double(z[ids[size_t(t)]]) - mx - std::log(s);
      }
      out[i].logprobs.push_back(sum);
    }
    int best = 0;
    for (size_t c = 1; c < out[i].logprobs.size(); ++c)
      if (out[i].logprobs[c] > out[i].logprobs[size_t(best)]) best = int(c);
    out[i].chosen = best;
  }
  return out;
}

double choice_accuracy(const std::vector<ChoiceItem>& items, const std::vector<ChoiceResult>& r) {
  if (items.empty()) return 0;
  int64_t right = 0;
  for (size_t i = 0; i < items.size(); ++i) right += r[i].chosen == items[i].gold;
  return double(right) / double(items.size());
}

}  // namespace lathe
