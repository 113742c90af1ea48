// Frozen-base weights stored below fp32 (LoRA's bf16 base, QLoRA's NF4 base) are expanded
// to fp32 one layer at a time, right before that layer's products read them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lathe::cpu {

void dequantize_bf16(float* out, const uint16_t* in, size_t n);
// NF4: two 4-bit codes per byte (element 2i in the low nibble), value = kNf4[code] ·
// absmax[i / block].
void dequantize_nf4(float* out, const uint8_t* codes, const float* absmax, size_t n, int64_t block);
// Double quantization of the NF4 scales: 8-bit codes on a log scale per group of `group`
// scales, value = exp(lo[g] + q · step[g]) (lo|step interleaved per group).
void dequantize_log8(float* out, const uint8_t* q, const float* lo_step, size_t n, int64_t group);
// Inverted dropout with a counter-based mask (a hash of seed and index), so backward
// regenerates the forward's mask instead of storing it. out (+)= keep ? in / (1 - p) : 0.
void dropout(float* out, const float* in, size_t n, float p, uint64_t seed, bool accumulate);

}  // namespace lathe::cpu
