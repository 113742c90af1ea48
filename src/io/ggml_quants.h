// ggml's tensor types for GGUF files, and the reference quantizers llama.cpp uses to make
// model files, reimplemented so that lathe's bytes equal ggml's bit for bit:
// quantize_row_q8_0_ref, quantize_row_q4_0_ref, quantize_row_q5_0_ref and
// quantize_row_q4_K_ref (ggml/src/ggml-quants.c), with the fp16 rounding of
// GGML_FP32_TO_FP16 (round to nearest even). The dequantizers are ggml's
// dequantize_row_* (what llama.cpp computes from the bytes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lathe {

// ggml_type values, as stored in a GGUF tensor entry.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q5_0 = 6,
  Q8_0 = 8,
  Q4_K = 12,
  BF16 = 30,
};

// Values per block and bytes per block: q8_0 32 / 34 (fp16 scale + 32 int8), q4_0 32 / 18
// (fp16 scale + 32 nibbles), q5_0 32 / 22 (+ 32 high bits), q4_K 256 / 144 (fp16 scale and
// min, 8 six-bit sub-block scales and mins in 12 bytes, 256 nibbles); f32/f16/bf16 1 / 4, 2, 2.
int64_t ggml_block_size(GgmlType t);
size_t ggml_block_bytes(GgmlType t);
// Bytes of a row of n values (n a multiple of the block size).
size_t ggml_row_bytes(GgmlType t, int64_t n);
// "f32", "f16", "bf16", "q8_0", "q4_0", "q5_0", "q4_K" (ggml_type_name).
const char* ggml_type_name(GgmlType t);

// One row of n values (a multiple of ggml_block_size) into ggml_row_bytes(t, n) bytes.
void ggml_quantize_row(GgmlType t, const float* x, uint8_t* y, int64_t n);
// Back to floats, as ggml's dequantize_row_* computes them.
void ggml_dequantize_row(GgmlType t, const uint8_t* x, float* y, int64_t n);

}  // namespace lathe
