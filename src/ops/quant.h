// Scalar reference code for every tensor type: dequantize, quantize, dot products.
// The SIMD kernels in matvec.cpp are tested against these.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/tensor_types.h"

namespace dip {

// Dequantizes n elements (multiple of the block size) of `src` of type t into dst.
void dequantize_row(TensorType t, const void* src, float* dst, size_t n);

// Quantizes n floats into blocks (n multiple of 32), as ggml's reference quantizers do
// (used for weights).
void quantize_row_q8_0(const float* x, BlockQ8_0* y, size_t n);
// Q8_0 for activations, as ggml's SIMD quantizer does it: the inverse scale is 127 / amax
// (not 1 / d as in the reference), rounding to nearest even. Bit-exact with llama.cpp on x86.
void quantize_row_q8_0_act(const float* x, BlockQ8_0* y, size_t n);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, size_t n);
// Encodes a row of floats as type t (F32 copy, F16/BF16 rounding, Q8_0/Q4_0 quantization).
void quantize_row(TensorType t, const float* x, void* dst, size_t n);

// Activation formats: what a weight of type t is multiplied with (ggml's vec_dot_type).
//   F32 -> F32, F16 -> F16, BF16 -> BF16, Q8_0/Q4_0 -> Q8_0.
TensorType activation_type(TensorType weight);

// Scalar reference dot products of one weight row with one encoded activation row.
float dot_ref(TensorType weight, const void* w, const void* act, size_t n);

}  // namespace dip
