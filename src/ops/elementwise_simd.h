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

// F16 (bf16 false) or BF16 (bf16 true) values to floats.
void decode_half_row(bool bf16, const uint16_t* src, float* dst, size_t n);

}  // namespace dip
