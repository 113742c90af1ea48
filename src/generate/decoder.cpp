#include "generate/decoder.h"

#include <algorithm>

#include "core/error.h"
#include "core/host_memory.h"
#include "generate/lora_bank.h"

namespace lathe {
namespace {
// Rows per forward: a long prompt is cut into chunks so activations (gate|up alone is
// rows × 2I floats: 117 MB per 512 rows for an 8B model) stay bounded. Chunking changes
// nothing numerically: later chunks read the earlier ones' keys from the cache.
constexpr int64_t kMaxRows = 512;
}  // namespace

Decoder::Decoder(LlamaModel& model, Backend& be, int64_t slots, int64_t capacity,
                 const LoraBank* bank)
    : model_(model), be_(be), bank_(bank), cfg_(model.config()), cache_(be, cfg_, slots, capacity) {
  const std::vector<float> t = rope_table(cfg_, capacity);
  rope_ = DeviceBuffer<float>(be_, t.size());
  be_.copy(rope_.get(), t.data(), t.size() * sizeof(float));
  pack_weights();
}

void Decoder::pack_weights() {
  // Products of a decode step have few rows (one per sequence), and on the CPU oneDNN
  // repacks the weights inside every call; packed once here, a step of the 56M model's
  // products took 4.4 against 7.7 ms at one row and 22.3 against 24.4 ms at 32 rows
  // (bench/kernels/decode_products.cpp, 2 AVX2 cores). The copy is as large as the fp32 weights, so
  // it is made only where it fits easily; a sharded model gathers its layers on the fly.
  const bool bf16 = model_.precision() == Precision::BF16;  // as MatmulArgs::bf16_operands
  if (model_.collective_forward() || be_.packed_weights_size(1, 1, bf16) == 0) return;
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size, HD = cfg_.q_dim();
  const int64_t S = HD + 2 * cfg_.kv_dim(), L = cfg_.num_hidden_layers;
  const int64_t shapes[4][2] = {{S, C}, {C, HD}, {2 * I, C}, {C, I}};  // by Linear
  double bytes = double(be_.packed_weights_size(cfg_.vocab_size, C, bf16));
  for (const auto& nk : shapes)
    bytes += double(L) * double(be_.packed_weights_size(nk[0], nk[1], bf16));
  bytes *= sizeof(float);
  if (bytes > 0.25 * machine_memory_available().bytes) return;
  auto pack = [&](Weight w, int64_t N, int64_t K) {
    DeviceBuffer<float> out(be_, be_.packed_weights_size(N, K, bf16));
    be_.pack_weights(out.get(), w.f32, w.bf16, N, K, bf16);
    return out;
  };
  for (int64_t l = 0; l < L; ++l) {
    const LayerWeights w = model_.layer_weights(l);
    packed_.push_back(pack(w.wqkv, S, C));
    packed_.push_back(pack(w.wo, C, HD));
    packed_.push_back(pack(w.wgu, 2 * I, C));
    packed_.push_back(pack(w.wd, C, I));
  }
  packed_head_ = pack(model_.head_weights().lm_head, cfg_.vocab_size, C);
}

const float* Decoder::packed(int64_t l, Linear which) const {
  return packed_.empty() ? nullptr : packed_[size_t(l * 4 + int64_t(which))].get();
}

void Decoder::maybe_round(float* x, size_t n) {
  // As in LlamaModel: bf16 models round every product input, products accumulate in fp32.
  if (model_.precision() == Precision::BF16) be_.round_to_bf16(x, n);
}

void Decoder::ensure(int64_t rows, int64_t logit_rows) {
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int64_t S = cfg_.q_dim() + 2 * cfg_.kv_dim();
  if (rows > rows_) {
    const size_t M = size_t(rows);
    x_.ensure(be_, M * C);
    xn_.ensure(be_, M * C);
    rstd_.ensure(be_, M);
    qkv_.ensure(be_, M * S);
    att_.ensure(be_, M * cfg_.q_dim());
    gu_.ensure(be_, M * 2 * I);
    h_.ensure(be_, M * I);
    ids_.ensure(be_, M);
    slot_.ensure(be_, M);
    pos_.ensure(be_, M);
    rows_ = rows;
  }
  if (logit_rows > logit_rows_) {
    xl_.ensure(be_, size_t(logit_rows * C));
    logits_.ensure(be_, size_t(logit_rows * cfg_.vocab_size));
    wanted_.ensure(be_, size_t(logit_rows));
    logit_rows_ = logit_rows;
  }
}

// One block on x_ in place, the op order of LlamaModel::layer_forward: rmsnorm → qkv →
// rope → attention (through the cache) → o_proj + residual → rmsnorm → gate|up → SwiGLU →
// down + residual.
void Decoder::linear(int64_t l, Linear which, float* y, const float* x, int64_t M, float beta,
                     const int32_t* adapter) {
  model_.linear_forward(l, which, y, x, M, beta, packed(l, which));
  if (bank_ && adapter) bank_->apply(l, which, x, y, M, adapter);
}

void Decoder::layer(int64_t l, int64_t M, const int32_t* adapter) {
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int64_t H = cfg_.num_attention_heads, KV = cfg_.num_key_value_heads, D = cfg_.head_dim;
  const int64_t S = (H + 2 * KV) * D;
  const float eps = float(cfg_.rms_norm_eps);
  const LayerWeights w = model_.layer_weights(l);

  be_.rmsnorm_forward(xn_.get(), rstd_.get(), x_.get(), w.ln1, M, C, eps);
  maybe_round(xn_.get(), size_t(M * C));
  linear(l, Linear::QKV, qkv_.get(), xn_.get(), M, 0.0f, adapter);
  be_.rope_forward(qkv_.get(), pos_.get(), rope_.get(), M, H + KV, D, S, false);
  AttentionDecodeArgs a;
  a.M = M, a.H = H, a.KV = KV, a.D = D;
  a.capacity = cache_.capacity();
  a.slot = slot_.get(), a.pos = pos_.get();
  be_.attention_decode(att_.get(), qkv_.get(), cache_.k(l), cache_.v(l), a);
  maybe_round(att_.get(), size_t(M * H * D));
  linear(l, Linear::O, x_.get(), att_.get(), M, 1.0f, adapter);

  be_.rmsnorm_forward(xn_.get(), rstd_.get(), x_.get(), w.ln2, M, C, eps);
  maybe_round(xn_.get(), size_t(M * C));
  linear(l, Linear::GateUp, gu_.get(), xn_.get(), M, 0.0f, adapter);
  be_.swiglu_forward(h_.get(), gu_.get(), M, I);
  maybe_round(h_.get(), size_t(M * I));
  linear(l, Linear::Down, x_.get(), h_.get(), M, 1.0f, adapter);
}

void Decoder::forward(const int32_t* ids, const int32_t* slot, const int32_t* pos, int64_t M,
                      const std::vector<int64_t>& logit_rows, float* logits,
                      const int32_t* adapter) {
  const int64_t C = cfg_.hidden_size, V = cfg_.vocab_size, L = cfg_.num_hidden_layers;
  for (int64_t m = 0; m < M; ++m) {
    LATHE_CHECK(ids[m] >= 0 && ids[m] < V, "token id ", ids[m],
                " is outside the model's vocabulary (size ", V, ")");
    LATHE_ASSERT(slot[m] >= 0 && slot[m] < cache_.slots());
    LATHE_ASSERT(pos[m] >= 0 && pos[m] < cache_.capacity());
  }
  const HeadWeights head = model_.head_weights();
  for (int64_t r0 = 0; r0 < M; r0 += kMaxRows) {
    const int64_t n = std::min(kMaxRows, M - r0);
    // This chunk's rows that need logits, and where they go in the output.
    std::vector<std::pair<int64_t, int64_t>> wanted;  // (row in chunk, output index)
    for (size_t r = 0; r < logit_rows.size(); ++r)
      if (logit_rows[r] >= r0 && logit_rows[r] < r0 + n)
        wanted.emplace_back(logit_rows[r] - r0, int64_t(r));
    ensure(n, int64_t(wanted.size()));
    be_.copy(ids_.get(), ids + r0, size_t(n) * sizeof(int32_t));
    be_.copy(slot_.get(), slot + r0, size_t(n) * sizeof(int32_t));
    be_.copy(pos_.get(), pos + r0, size_t(n) * sizeof(int32_t));
    be_.embedding_forward(x_.get(), ids_.get(), head.embed, n, C);
    for (int64_t l = 0; l < L; ++l) layer(l, n, adapter ? adapter + r0 : nullptr);
    if (wanted.empty()) continue;

    // Final norm and lm_head for the wanted rows only: a prompt needs one row of logits,
    // not prompt-length × vocabulary. They are gathered in one call after one upload of
    // their indices, not a copy() per row (each a wait for a GPU's stream).
    const int64_t R = int64_t(wanted.size());
    std::vector<int32_t> idx(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) idx[size_t(r)] = int32_t(wanted[size_t(r)].first);
    be_.copy(wanted_.get(), idx.data(), idx.size() * sizeof(int32_t));
    be_.gather_rows(xl_.get(), x_.get(), wanted_.get(), R, C);
    be_.rmsnorm_forward(xn_.get(), rstd_.get(), xl_.get(), head.final_norm, R, C,
                        float(cfg_.rms_norm_eps));
    maybe_round(xn_.get(), size_t(R * C));
    MatmulArgs mm;  // logits[R, V] = xl · lm_headᵀ
    mm.M = R, mm.N = V, mm.K = C;
    mm.A = xn_.get(), mm.lda = C;
    mm.B = head.lm_head.f32, mm.B_bf16 = head.lm_head.bf16, mm.ldb = C, mm.trans_b = true;
    mm.B_packed = packed_head_.get();
    mm.C = logits_.get(), mm.ldc = V;
    mm.bf16_operands = model_.precision() == Precision::BF16;
    be_.matmul(mm);
    // Where the chunk's output rows are consecutive (logit_rows in order, as the generator
    // asks) one copy() moves them all; otherwise one per row.
    const int64_t first = wanted[0].second;
    bool consecutive = true;
    for (int64_t r = 0; r < R; ++r) consecutive &= wanted[size_t(r)].second == first + r;
    if (consecutive) {
      be_.copy(logits + first * V, logits_.get(), size_t(R * V) * sizeof(float));
    } else {
      for (int64_t r = 0; r < R; ++r)
        be_.copy(logits + wanted[size_t(r)].second * V, logits_.get() + r * V,
                 size_t(V) * sizeof(float));
    }
  }
}

}  // namespace lathe
