// Highway versions of the element-wise steps that run once per token and layer: each gives
// bit-identical results to its scalar reference (ops/elementwise.h, ops/quant.h) on targets
// with FMA, and is tested against it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/tensor_types.h"

namespace dip {

// h = silu(g) * u with ggml's exp (as swiglu()).
void swiglu_simd(const float* g, const float* u, float* h, size_t n);

// Q8_0 activations as quantize_row_q8_0_act() (inverse scale 127/amax, nearest-even).
void quantize_row_q8_0_act_simd(const float* x, BlockQ8_0* y, size_t n);

// Q8_K activations of the K-quant products as quantize_row_q8_K() (ops/quant_k.h), n a
// multiple of 256.
void quantize_row_q8_K_simd(const float* x, BlockQ8K* y, size_t n);

// F16 (bf16 false) or BF16 (bf16 true) values to floats.
void decode_half_row(bool bf16, const uint16_t* src, float* dst, size_t n);

// Floats to F16 as f32_to_fp16 (nearest-even; NaN stays NaN, its payload aside).
void encode_f16_row(const float* src, uint16_t* dst, size_t n);

// The steps of llama.cpp's attention softmax: x[i] = expf_ggml(x[i] - shift); the largest of n
// values (-inf for none); dst[i] = round_fp16(src[i] * scale) (also q's f16 copy, scale 1).
void exp_shifted_simd(float* x, size_t n, float shift);
float max_simd(const float* x, size_t n);
void round_fp16_simd(const float* src, float scale, float* dst, size_t n);

}  // namespace dip
