// K-quants (Q4_K, Q5_K, Q6_K) in ggml's block layouts: dequantize, quantize, and the dot product
// with Q8_K activations, as ggml computes them (integer sums per sub-block, scaled per
// super-block). Scalar code: the reference for any SIMD kernel and, for now, the kernel itself.
#pragma once
#include <cstddef>

#include "ops/tensor_types.h"

namespace dip {

// n: a multiple of 256.
void dequantize_row_k(TensorType t, const void* src, float* dst, size_t n);

// Weights: per sub-block a scale (and for Q4_K/Q5_K a min) from the sub-block's range, the
// scales quantized against the super-block's largest (6 bits, or int8 for Q6_K), then each
// element rounded with its quantized scale. A direct min/max fit, not llama.cpp's iterative
// search: files quantized by llama.cpp's own tool can be slightly more accurate.
void quantize_row_k(TensorType t, const float* x, void* dst, size_t n);

// Activations, exactly as ggml's quantize_row_q8_K: the scale from the element of largest
// magnitude (signed, -127 / max), rounding to nearest even, sums of each 16.
void quantize_row_q8_K(const float* x, BlockQ8K* y, size_t n);

// dot(W row of type t, activation row) over n elements.
float dot_k(TensorType t, const void* w, const BlockQ8K* act, size_t n);

}  // namespace dip
