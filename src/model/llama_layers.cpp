// One decoder block's forward and backward, the fused head and loss, and the matrix
// products they issue (bf16 rounding of every operand in bf16 models).
#include <algorithm>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "model/llama.h"

namespace lathe {

void LlamaModel::maybe_round(float* x, size_t n) {
  // bf16 training: inputs of matrix products carry bf16 precision, as under autocast;
  // the products themselves accumulate in fp32.
  if (precision_ == Precision::BF16) be_.round_to_bf16(x, n);
}

const float* LlamaModel::rounded_operand(const float* x, size_t n) {
  if (precision_ != Precision::BF16) return x;
  dy_.ensure(be_, n);
  be_.copy(dy_.get(), x, n * sizeof(float));
  be_.round_to_bf16(dy_.get(), n);
  return dy_.get();
}

void LlamaModel::product(MatmulArgs a) {
  // Every operand of a bf16 model's products is bf16-valued (weights through the compute
  // copy, activations and gradients through maybe_round / rounded_operand), so the
  // backend may run them on bf16 kernels.
  a.bf16_operands = precision_ == Precision::BF16;
  be_.matmul(a);
}

// y[M,N] (+)= x[M,K] · w[N,K]ᵀ — a linear layer in HF's weight layout.
void LlamaModel::matmul_xwT(float* y, const float* x, Weight w, int64_t M, int64_t N, int64_t K,
                            float beta) {
  MatmulArgs a;
  a.M = M, a.N = N, a.K = K;
  a.A = x, a.lda = K;
  a.B = w.f32, a.B_bf16 = w.bf16, a.B_packed = w.packed, a.ldb = K, a.trans_b = true;
  a.C = y, a.ldc = N, a.beta = beta;
  product(a);
}

void LlamaModel::layer_forward(int64_t l, LayerActs& a, const float* x_in, float* x_out,
                               bool train) {
  const LayerWeights w = layer_weights(l);
  const int64_t M = B_ * T_, C = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int64_t H = cfg_.num_attention_heads, KV = cfg_.num_key_value_heads, D = cfg_.head_dim;
  const int64_t S = (H + 2 * KV) * D;
  const float eps = float(cfg_.rms_norm_eps);

  be_.rmsnorm_forward(xn_.get(), a.rstd1.get(), x_in, w.ln1, M, C, eps);
  maybe_round(xn_.get(), size_t(M * C));
  matmul_xwT(a.qkv.get(), xn_.get(), w.wqkv, M, S, C, 0.0f);
  lora_forward(l, Linear::QKV, xn_.get(), a.qkv.get(), M, &a, train);
  // q and k heads are adjacent in each row: one call rotates both.
  be_.rope_forward(a.qkv.get(), positions_.get(), rope_.get(), M, H + KV, D, S, false);
  AttentionArgs aa{B_, T_, H, KV, D, doc_start_.get()};
  be_.attention_forward(a.att.get(), a.lse.get(), a.qkv.get(), aa);
  // Rounded like every product input; the attention backward's row term dO·O then also
  // sees the bf16 output, an error of bf16 size like autocast's.
  maybe_round(a.att.get(), size_t(M * H * D));
  be_.copy(a.x_mid.get(), x_in, size_t(M * C) * sizeof(float));
  matmul_xwT(a.x_mid.get(), a.att.get(), w.wo, M, C, H * D, 1.0f);
  lora_forward(l, Linear::O, a.att.get(), a.x_mid.get(), M, &a, train);

  be_.rmsnorm_forward(xn_.get(), a.rstd2.get(), a.x_mid.get(), w.ln2, M, C, eps);
  maybe_round(xn_.get(), size_t(M * C));
  matmul_xwT(a.gu.get(), xn_.get(), w.wgu, M, 2 * I, C, 0.0f);
  lora_forward(l, Linear::GateUp, xn_.get(), a.gu.get(), M, &a, train);
  be_.swiglu_forward(h_.get(), a.gu.get(), M, I);
  maybe_round(h_.get(), size_t(M * I));
  be_.copy(x_out, a.x_mid.get(), size_t(M * C) * sizeof(float));
  matmul_xwT(x_out, h_.get(), w.wd, M, C, I, 1.0f);
  lora_forward(l, Linear::Down, h_.get(), x_out, M, &a, train);
}

// dx[M,C] holds d(loss)/d(layer output) on entry and d/d(layer input) on return. With a
// frozen base only the adapters get gradients; the base's weight products are skipped.
void LlamaModel::layer_backward(int64_t l, LayerActs& a, const float* x_in, float* dx) {
  const LayerOffsets& o = table_.layers[size_t(l)];
  const LayerWeights w = layer_weights(l);
  const bool base = !frozen_;
  // G[off] is the gradient of flat parameter `off` of this layer: the full buffer, or
  // (full_shard) the layer's own buffer, reduced to its owners afterwards.
  float* Gl = sharded_ ? layer_grad_buffer(l) : grads_.get() + (base ? o.ln1 : 0);
  auto G_at = [&](size_t off) { return Gl + (off - o.ln1); };
  const float eps = float(cfg_.rms_norm_eps);
  const int64_t M = B_ * T_, C = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int64_t H = cfg_.num_attention_heads, KV = cfg_.num_key_value_heads, D = cfg_.head_dim;
  const int64_t S = (H + 2 * KV) * D, HD = H * D;
  auto mm = [&](float* c, const float* A, bool ta, Weight B, bool tb, int64_t m, int64_t n,
                int64_t k, int64_t lda, int64_t ldb, float beta) {
    MatmulArgs args;
    args.M = m, args.N = n, args.K = k;
    args.A = A, args.lda = lda, args.trans_a = ta;
    args.B = B.f32, args.B_bf16 = B.bf16, args.ldb = ldb, args.trans_b = tb;
    args.C = c, args.ldc = n, args.beta = beta;
    product(args);
  };
  float* norm_dw2 = base ? G_at(o.ln2) : norm_dw_.get();
  float* norm_dw1 = base ? G_at(o.ln1) : norm_dw_.get();

  // MLP: out = x_mid + down(h)
  be_.swiglu_forward(h_.get(), a.gu.get(), M, I);  // recomputed, as in the forward
  maybe_round(h_.get(), size_t(M * I));
  // A product's output gradient is a bf16 operand too (autocast's is a bf16 tensor); the
  // residual stream dx itself stays fp32.
  const float* dy = rounded_operand(dx, size_t(M * C));
  mm(dh_.get(), dy, false, w.wd, false, M, I, C, C, I, 0.0f);                // dh = dy · Wd
  if (base) mm(G_at(o.wd), dy, true, h_.get(), false, C, I, M, C, I, 1.0f);  // dWd += dyᵀ · h
  lora_backward(l, Linear::Down, h_.get(), dy, C, dh_.get(), M, a);
  be_.swiglu_backward(dgu_.get(), dh_.get(), a.gu.get(), M, I);
  maybe_round(dgu_.get(), size_t(M * 2 * I));
  be_.rmsnorm_forward(xn_.get(), a.rstd2.get(), a.x_mid.get(), w.ln2, M, C, eps);
  maybe_round(xn_.get(), size_t(M * C));
  mm(dxn_.get(), dgu_.get(), false, w.wgu, false, M, C, 2 * I, 2 * I, C, 0.0f);
  if (base) mm(G_at(o.wgu), dgu_.get(), true, xn_.get(), false, 2 * I, C, M, 2 * I, C, 1.0f);
  lora_backward(l, Linear::GateUp, xn_.get(), dgu_.get(), 2 * I, dxn_.get(), M, a);
  be_.rmsnorm_backward(dx, norm_dw2, dxn_.get(), a.x_mid.get(), w.ln2, a.rstd2.get(), M, C);

  // Attention: x_mid = x_in + o_proj(attn(rope(qkv(norm(x_in)))))
  dy = rounded_operand(dx, size_t(M * C));
  mm(datt_.get(), dy, false, w.wo, false, M, HD, C, C, HD, 0.0f);
  if (base) mm(G_at(o.wo), dy, true, a.att.get(), false, C, HD, M, C, HD, 1.0f);
  lora_backward(l, Linear::O, a.att.get(), dy, C, datt_.get(), M, a);
  AttentionArgs aa{B_, T_, H, KV, D, doc_start_.get()};
  be_.attention_backward(dqkv_.get(), datt_.get(), a.att.get(), a.lse.get(), a.qkv.get(), aa);
  be_.rope_forward(dqkv_.get(), positions_.get(), rope_.get(), M, H + KV, D, S, true);
  maybe_round(dqkv_.get(), size_t(M * S));
  be_.rmsnorm_forward(xn_.get(), a.rstd1.get(), x_in, w.ln1, M, C, eps);
  maybe_round(xn_.get(), size_t(M * C));
  if (base) mm(G_at(o.wqkv), dqkv_.get(), true, xn_.get(), false, S, C, M, S, C, 1.0f);
  // The first layer's input gradient only feeds the embedding; a frozen one needs none.
  if (!base && l == 0) {
    lora_backward(l, Linear::QKV, xn_.get(), dqkv_.get(), S, dxn_.get(), M, a);
    return;
  }
  mm(dxn_.get(), dqkv_.get(), false, w.wqkv, false, M, C, S, S, C, 0.0f);
  lora_backward(l, Linear::QKV, xn_.get(), dqkv_.get(), S, dxn_.get(), M, a);
  be_.rmsnorm_backward(dx, norm_dw1, dxn_.get(), x_in, w.ln1, a.rstd1.get(), M, C);
}

// Final norm, lm_head and cross-entropy, fused and chunked over tokens: only rows with
// a target are multiplied, `chunk` rows at a time, so at most chunk·V logits exist.
// Writes d(loss)/d(xn_final) into dxf (rows without targets get zero); with dxf null it
// only computes the loss (evaluation), still chunked.
double LlamaModel::head_loss_and_grad(const Batch& b, float loss_scale, float* dxf) {
  const int64_t M = b.B * b.T, C = cfg_.hidden_size, V = cfg_.vocab_size;
  Weight W = head_weights().lm_head;
  // The head's gradient: null with a frozen base; its own buffer under full_shard.
  float* dW = sharded_       ? head_grad_lm_.get()
              : grads_.get() ? grads_.get() + table_.lm_head
                             : nullptr;
  std::vector<int32_t> rows;
  for (int64_t i = 0; i < M; ++i)
    if (b.targets[size_t(i)] >= 0) rows.push_back(int32_t(i));
  // Floats of logits at once (128 MiB): 32 MiB split the 56M model's 1024 rows into chunks
  // of 262, whose dx = dlogits·W products (K = 32000) ran at 93 GFLOP/s against 150 for
  // the whole batch; the step was 10% slower (2.61 s against 2.36 s, fp32, AVX2).
  const int64_t budget = int64_t(32) << 20;
  const int64_t chunk = std::max<int64_t>(16, std::min<int64_t>(int64_t(rows.size()), budget / V));
  logits_chunk_.ensure(be_, size_t(chunk * V));
  rows_x_.ensure(be_, size_t(chunk * C));
  rows_dx_.ensure(be_, size_t(chunk * C));
  rows_targets_.ensure(be_, size_t(2 * chunk));  // a chunk's row indices | their targets
  if (dxf) be_.zero(dxf, size_t(M * C) * sizeof(float));
  // Every chunk multiplies by W twice: with bf16 kernels it is packed to bf16 once here
  // rather than by each product (a 16M-element pass each for a 32K × 512 head).
  // (A full model's bf16 weights already are; a frozen or gathered fp32 head is not.)
  // On fp32 kernels a bf16-stored head is widened once here, for the same reason.
  const uint16_t* W16 = W.bf16;
  if (!W16 && precision_ == Precision::BF16 && be_.bf16_kernels()) {
    head_bf16_.ensure(be_, size_t(V * C));
    be_.pack_bf16(head_bf16_.get(), W.f32, V, C, C);
    W16 = head_bf16_.get();
  } else if (W16 && !be_.bf16_kernels()) {
    head_f32_.ensure(be_, size_t(V * C));
    be_.dequantize_bf16(head_f32_.get(), W16, size_t(V * C));
    W.f32 = head_f32_.get();
  }
  double loss = 0;
  for (int64_t r0 = 0; r0 < int64_t(rows.size()); r0 += chunk) {
    const int64_t m = std::min<int64_t>(chunk, int64_t(rows.size()) - r0);
    // One upload of the chunk's row indices and targets, then one gather: a copy() per
    // row would wait for a GPU's stream once per row (thousands of times a step).
    std::vector<int32_t> up(static_cast<size_t>(2 * m));
    for (int64_t i = 0; i < m; ++i) {
      const int32_t row = rows[size_t(r0 + i)];
      up[size_t(i)] = row;
      up[size_t(m + i)] = b.targets[size_t(row)];
    }
    be_.copy(rows_targets_.get(), up.data(), up.size() * 4);
    const int32_t* d_rows = rows_targets_.get();
    const int32_t* d_targets = rows_targets_.get() + m;
    be_.gather_rows(rows_x_.get(), xn_final_.get(), d_rows, m, C);
    MatmulArgs lg;  // logits = rows · Wᵀ
    lg.M = m, lg.N = V, lg.K = C;
    lg.A = rows_x_.get(), lg.lda = C;
    lg.B = W.f32, lg.ldb = C, lg.trans_b = true, lg.B_bf16 = W16;
    lg.C = logits_chunk_.get(), lg.ldc = V;
    product(lg);
    loss += be_.softmax_cross_entropy(logits_chunk_.get(), d_targets, m, V, loss_scale);
    if (!dxf) continue;
    maybe_round(logits_chunk_.get(), size_t(m * V));  // now d(loss)/d(logits), an operand
    MatmulArgs dx;                                    // d(rows) = dlogits · W
    dx.M = m, dx.N = C, dx.K = V;
    dx.A = logits_chunk_.get(), dx.lda = V;
    dx.B = W.f32, dx.ldb = C, dx.B_bf16 = W16;
    dx.C = rows_dx_.get(), dx.ldc = C;
    product(dx);
    if (dW) {
      MatmulArgs dw;  // dW += dlogitsᵀ · rows
      dw.M = V, dw.N = C, dw.K = m;
      dw.A = logits_chunk_.get(), dw.lda = V, dw.trans_a = true;
      dw.B = rows_x_.get(), dw.ldb = C;
      dw.C = dW, dw.ldc = C, dw.beta = 1.0f;
      product(dw);
    }
    be_.scatter_rows(dxf, rows_dx_.get(), d_rows, m, C);  // distinct rows: a plain store
  }
  return loss;
}

}  // namespace lathe
