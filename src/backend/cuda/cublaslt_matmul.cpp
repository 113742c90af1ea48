#include "backend/cuda/cublaslt_matmul.h"

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise.h"

namespace lathe {
namespace {

// 32 MiB: cuBLASLt's recommendation for Hopper (its docs), more than enough for A100.
constexpr size_t kWorkspace = size_t(32) << 20;

// The alignment a pointer guarantees, up to 16 bytes (what vectorized kernels need); an
// algorithm chosen for 16-byte aligned operands may not run on a 4-byte aligned view.
int alignment(const void* p) {
  const auto u = reinterpret_cast<uintptr_t>(p);
  for (int a = 16; a > 1; a /= 2)
    if (u % uintptr_t(a) == 0) return a;
  return 1;
}

}  // namespace

CublasLtMatmul::CublasLtMatmul(cudaStream_t stream, DeviceMemoryAccount* account)
    : stream_(stream), account_(account) {
  CUBLAS_CHECK(cublasLtCreate(&lt_));
  CUDA_CHECK(cudaMalloc(&workspace_, kWorkspace));
  account_->allocated(kWorkspace);
}

CublasLtMatmul::~CublasLtMatmul() {
  cudaFree(a_scratch_);
  cudaFree(workspace_);
  cublasLtDestroy(lt_);
}

uint16_t* CublasLtMatmul::a_bf16(size_t elements) {
  if (elements > a_scratch_elems_) {
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old buffer may still be read
    CUDA_CHECK(cudaFree(a_scratch_));
    account_->freed(a_scratch_elems_ * sizeof(uint16_t));
    a_scratch_ = nullptr;
    CUDA_CHECK(cudaMalloc(&a_scratch_, elements * sizeof(uint16_t)));
    account_->allocated(elements * sizeof(uint16_t));
    a_scratch_elems_ = elements;
  }
  return a_scratch_;
}

// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: a row-major matrix is its
// own transpose in column-major terms, so B and A swap places and keep their ops.
void CublasLtMatmul::run(const MatmulArgs& a) {
  if (a.M == 0 || a.N == 0) return;
  if (a.bf16_operands && a.B_bf16) {
    // bf16 weights as stored (half the bytes of fp32); A holds bf16 values (the caller
    // rounded them), so converting it to bits is exact. Row stride of the dense B_bf16:
    // its stored row length.
    const int64_t rows = a.trans_a ? a.K : a.M, cols = a.trans_a ? a.M : a.K;
    uint16_t* A = a_bf16(size_t(rows * cols));
    cuda::pack_bf16(A, a.A, rows, cols, a.lda, stream_);
    product(Mode::bf16, a, A, cols, a.B_bf16, a.trans_b ? a.K : a.N);
    return;
  }
  LATHE_CHECK(a.B, "matmul: B_bf16 without bf16_operands, or no B at all");
  product(a.bf16_operands ? Mode::fp32_as_bf16 : Mode::fp32, a, a.A, a.lda, a.B, a.ldb);
}

void CublasLtMatmul::product(Mode mode, const MatmulArgs& a, const void* A, int64_t lda,
                             const void* B, int64_t ldb) {
  const cudaDataType_t in_type = mode == Mode::bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t compute =
      mode == Mode::fp32_as_bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
  cublasLtMatmulDesc_t desc;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F));
  const cublasOperation_t op_b = a.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = a.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_b, sizeof op_b));
  CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_a, sizeof op_a));
  // As stored, column-major: B is [N,K] (or [K,N] when transposed), A is [K,M] (or [M,K]).
  cublasLtMatrixLayout_t lb, la, lc;
  CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&lb, in_type, a.trans_b ? a.K : a.N, a.trans_b ? a.N : a.K, ldb));
  CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&la, in_type, a.trans_a ? a.M : a.K, a.trans_a ? a.K : a.M, lda));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, a.N, a.M, a.ldc));
  const Key key{a.M,       a.N,       a.K,       lda,          ldb,          a.ldc,
                a.trans_a, a.trans_b, int(mode), alignment(A), alignment(B), alignment(a.C)};
  const cublasLtMatmulAlgo_t& chosen = algo(key, desc, lb, la, lc);
  CUBLAS_CHECK(cublasLtMatmul(lt_, desc, &a.alpha, B, lb, A, la, &a.beta, a.C, lc, a.C, lc, &chosen,
                              workspace_, kWorkspace, stream_));
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatmulDescDestroy(desc);
}

// The heuristic's first choice for this shape, asked once. Arguments in cuBLASLt's order:
// its "A" is our B (see run).
const cublasLtMatmulAlgo_t& CublasLtMatmul::algo(const Key& key, cublasLtMatmulDesc_t desc,
                                                 cublasLtMatrixLayout_t lb,
                                                 cublasLtMatrixLayout_t la,
                                                 cublasLtMatrixLayout_t lc) {
  auto it = algos_.find(key);
  if (it != algos_.end()) return it->second;
  cublasLtMatmulPreference_t pref;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = kWorkspace;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &ws, sizeof ws));
  const uint32_t align_b = uint32_t(std::get<10>(key)), align_a = uint32_t(std::get<9>(key)),
                 align_c = uint32_t(std::get<11>(key));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_b, sizeof align_b));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_a, sizeof align_a));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof align_c));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c, sizeof align_c));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt_, desc, lb, la, lc, lc, pref, 1, &result, &found));
  cublasLtMatmulPreferenceDestroy(pref);
  LATHE_CHECK(found > 0, "cuBLASLt has no algorithm for a ", std::get<0>(key), "x",
              std::get<1>(key), "x", std::get<2>(key), " product in mode ", std::get<8>(key));
  return algos_.emplace(key, result.algo).first->second;
}

}  // namespace lathe
