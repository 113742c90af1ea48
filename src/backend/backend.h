// The device seam. Model and training code call matrix products and kernels only
// through this interface, so a CUDA backend (cuBLASLt, cuDNN attention) replaces the CPU
// one without touching them. All pointers are device pointers of the backend; matrices
// are row-major; fp32 unless a signature says otherwise.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace lathe {

// op(X) is X or its transpose. C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C,
// where A is stored [M,K] (or [K,M] if trans_a) with row stride lda, likewise B.
struct MatmulArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* A = nullptr;
  int64_t lda = 0;
  bool trans_a = false;
  const float* B = nullptr;
  int64_t ldb = 0;
  bool trans_b = false;
  float* C = nullptr;
  int64_t ldc = 0;
  float alpha = 1.0f;
  float beta = 0.0f;  // 0 (overwrite) or 1 (accumulate)
  // bf16 training: the caller has rounded A and B to bf16 values, so a backend may multiply
  // them with bf16 kernels (fp32 accumulation) where the hardware has them. Either way the
  // result is the same product up to summation order; the numerics are the caller's.
  bool bf16_operands = false;
  // With bf16_operands: B as bf16 bits, stored densely (row stride = its stored row
  // length), instead of or beside the fp32 B. A bf16 model's weights are kept this way
  // (B null); a weight many products read is packed once (the lm_head, chunk after
  // chunk). bf16 kernels read it directly; fp32 kernels read B, or B_bf16 widened.
  const uint16_t* B_bf16 = nullptr;
  // With trans_b: B packed ahead by Backend::pack_weights (generation's constant weights),
  // beside B or B_bf16, with the same bf16_operands as these products. A backend runs the
  // product from it where it packs weights at all.
  const float* B_packed = nullptr;
};

// Attention over a batch of rows [B,T] with packed q|k|v per token:
// qkv[B*T, (H + 2*KV) * D]. doc_start[B*T] (nullable) gives, for each token, the position
// in its row where its document begins; a query attends to keys in [doc_start, itself].
struct AttentionArgs {
  int64_t B = 0, T = 0, H = 0, KV = 0, D = 0;
  const int32_t* doc_start = nullptr;
};

// Attention of M new query rows against a KV cache, for generation. The cache of one layer
// is k_cache and v_cache, each [slots, KV, capacity, D]. Row m belongs to sequence slot[m]
// at position pos[m]: its k and v (RoPE already applied) are first written into the cache
// at that position, then its query attends to positions [0, pos[m]] of its slot. Several
// rows of one slot (a prompt's prefill) are therefore causal among themselves; no two rows
// may share a (slot, pos).
struct AttentionDecodeArgs {
  int64_t M = 0, H = 0, KV = 0, D = 0;
  int64_t capacity = 0;           // positions per slot
  const int32_t* slot = nullptr;  // [M]
  const int32_t* pos = nullptr;   // [M]
};

struct AdamWArgs {
  float lr = 0, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0;
  int64_t step = 1;         // 1-based, for bias correction
  float grad_scale = 1.0f;  // gradient clipping folded into the update: g ← g · grad_scale
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual int threads() const = 0;

  // One line for the startup log, naming the device (a GPU's model, for instance).
  virtual std::string description() const { return name(); }
  // What runs the matrix products, e.g. "oneDNN avx2" or "cuBLASLt": MFU peaks are kept
  // per kernel family, since an ISA cap or a library update changes the peak.
  virtual std::string matmul_kernels() const { return name(); }
  // Whether host code may read and write this backend's memory in place. True on the CPU,
  // whose memory is host memory; false (the default) for a GPU's, which host code reaches
  // only through copy(). Code above the seam writes in place where this is true, so the
  // CPU path keeps its speed, and stages through host buffers and copy() where it is not.
  virtual bool host_accessible() const { return false; }
  // The most device memory this backend has held at once since it was made, in bytes:
  // alloc() and the backend's own scratch (workspaces, staging). 0 where the backend does
  // not count (the CPU, whose memory is the process's: see its peak RSS instead).
  virtual size_t peak_memory_bytes() const { return 0; }

  // Device memory, zero-filled, 64-byte aligned.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p) = 0;
  // Host to device, device to host or device to device (either pointer may be host
  // memory); returns once the bytes are in place, so a host source may be reused at once.
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void sync() = 0;

  virtual void matmul(const MatmulArgs& a) = 0;
  // Whether products with bf16_operands run on bf16 kernels here (else on fp32 ones).
  virtual bool bf16_kernels() const { return false; }
  // Weights packed once for products of a few rows (generation, serving): the floats a
  // packed [N, K] weight takes, 0 where this backend does not pack (it then reads B).
  // bf16_operands: the products that read it will have MatmulArgs::bf16_operands set, so
  // the backend may pack for bf16 kernels (the CPU does where it has bf16 dot products).
  virtual size_t packed_weights_size(int64_t N, int64_t K, bool bf16_operands) const { return 0; }
  // Packs W [N, K] (fp32, or bf16 bits W16 when W is null) for MatmulArgs::B_packed.
  virtual void pack_weights(float* panels, const float* W, const uint16_t* W16, int64_t N,
                            int64_t K, bool bf16_operands) {}

  // Kernels: see src/kernels/cpu/*.h for shapes and semantics.
  virtual void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t M,
                                 int64_t C) = 0;
  virtual void embedding_backward(float* dtable, const int32_t* ids, const float* dout, int64_t M,
                                  int64_t C) = 0;
  // Row moves, rows of C floats, with the row indices (int32) in backend memory:
  // gather dst[i, :] = src[rows[i], :]; scatter dst[rows[i], :] = src[i, :] with distinct
  // rows. One call where code above the seam would copy() row by row: on a GPU each
  // copy() waits for the stream, and a step's loss head moves thousands of rows.
  virtual void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n,
                           int64_t C) = 0;
  virtual void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n,
                            int64_t C) = 0;
  virtual void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t M,
                               int64_t C, float eps) = 0;
  virtual void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x,
                                const float* w, const float* rstd, int64_t M, int64_t C) = 0;
  virtual void rope_forward(float* qkv, const int32_t* pos, const float* cos_sin, int64_t M,
                            int64_t heads, int64_t D, int64_t row_stride, bool inverse) = 0;
  virtual void attention_forward(float* out, float* lse, const float* qkv,
                                 const AttentionArgs& a) = 0;
  virtual void attention_backward(float* dqkv, const float* dout, const float* out,
                                  const float* lse, const float* qkv, const AttentionArgs& a) = 0;
  // Generation: qkv [M, (H+2KV)*D] as in attention_forward, out [M, H*D]; see
  // AttentionDecodeArgs for the cache layout and which keys each row sees.
  virtual void attention_decode(float* out, const float* qkv, float* k_cache, float* v_cache,
                                const AttentionDecodeArgs& a) = 0;
  virtual void swiglu_forward(float* h, const float* gate_up, int64_t M, int64_t I) = 0;
  virtual void swiglu_backward(float* dgate_up, const float* dh, const float* gate_up, int64_t M,
                               int64_t I) = 0;
  // Rows of logits [M,V] become (softmax - onehot(target)) * scale, in place; rows whose
  // target is -100 become zero. Returns the sum of -log softmax[target] over valid rows.
  virtual double softmax_cross_entropy(float* logits, const int32_t* targets, int64_t M, int64_t V,
                                       float scale) = 0;
  virtual void round_to_bf16(float* x, size_t n) = 0;  // in place, round-to-nearest-even
  // The bf16 bits of a rows×cols matrix with row stride ld, written densely (as
  // round_to_bf16 rounds): MatmulArgs::B_bf16.
  virtual void pack_bf16(uint16_t* out, const float* in, int64_t rows, int64_t cols,
                         int64_t ld) = 0;
  virtual void add(float* y, const float* x, size_t n) = 0;  // y += x
  // Frozen-base storage (src/kernels/cpu/quant.h): bf16 bits, NF4 codes with block scales,
  // log-scale 8-bit scales (double quantization); and LoRA's dropout with a hashed mask.
  virtual void dequantize_bf16(float* out, const uint16_t* in, size_t n) = 0;
  virtual void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n,
                              int64_t block) = 0;
  virtual void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n,
                               int64_t group) = 0;
  virtual void dropout(float* out, const float* in, size_t n, float p, uint64_t seed,
                       bool accumulate) = 0;
  virtual double sum_squares(const float* x, size_t n) = 0;
  // One AdamW step (PyTorch semantics) over a flat range; the updated weights rounded to
  // bf16 also go to `rounded` (fp32 storage) and `bits` (bf16) where those are not null.
  virtual void adamw_step(float* param, const float* grad, float* m, float* v, float* rounded,
                          uint16_t* bits, size_t n, const AdamWArgs& a) = 0;
};

// threads = 0: all cores. bf16_kernels = false keeps bf16 products on the fp32 kernels
// even where the CPU has bf16 dot products (to compare the two).
std::unique_ptr<Backend> make_cpu_backend(int threads, bool bf16_kernels = true);
#ifdef LATHE_HAVE_CUDA
// The CUDA backend (built with -DLATHE_CUDA=ON): cuBLASLt products and the kernels of
// src/kernels/cuda, on one stream of the given device.
std::unique_ptr<Backend> make_cuda_backend(int device);
int cuda_device_count();  // 0 when there is no usable GPU or driver
#endif

// Wraps a backend, timing every call. print_table: print the time per op at destruction (lathe
// bench --profile); either way, calls are trace events while core/trace.h records.
std::unique_ptr<Backend> make_profiling_backend(std::unique_ptr<Backend> inner,
                                                bool print_table = true);

}  // namespace lathe
