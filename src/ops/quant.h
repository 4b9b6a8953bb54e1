// Scalar reference code for every tensor type: dequantize, quantize, dot products.
// The SIMD kernels in matvec.cpp are tested against these.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

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
// Encodes a row of floats as type t (F32 copy, F16/BF16 rounding, Q8_0/Q4_0/K-quant
// quantization; Q8_K as ggml quantizes activations).
void quantize_row(TensorType t, const float* x, void* dst, size_t n);

// Activation formats: what a weight of type t is multiplied with (ggml's vec_dot_type).
//   F32 -> F32, F16 -> F16, BF16 -> BF16, Q8_0/Q4_0 -> Q8_0, the K-quants (Q2_K..Q6_K) -> Q8_K.
TensorType activation_type(TensorType weight);

// Scalar reference dot products of one weight row with one encoded activation row.
float dot_ref(TensorType weight, const void* w, const void* act, size_t n);

// The Q8_0/Q4_0 x Q8_0 dot in the exact float order of ggml's x86 kernels
// (ggml_vec_dot_q8_0_q8_0 / _q4_0_q8_0, tinyBLAS_Q0_AVX): eight lanes of four consecutive
// elements, each adding per block fma(dw * da, its integer sum), in block order, then the tree
// (l + l+4), (0 + 2, 1 + 3), (0 + 1). Bit-exact target of qdot_lanes_avx512.cpp.
float dot_ggml_lane_order_ref(TensorType weight, const void* w, const BlockQ8_0* act, size_t n);

// What the Q4_0 kernels in ggml's repacked order (qdot_q4_0_rows_avx512.cpp,
// qdot_q4_0_x8_avx2.cpp) keep per Q8_0 activation block besides the quants: 8 * the sum of its
// quants (the nibbles' -8 offset, taken off the exact integer sums) and its scale as a float.
// (Compiled here, with the baseline flags: the kernel files are built for their own targets.)
struct Q4ActSums {
  std::vector<int32_t> off8;
  std::vector<float> d;
  size_t nb = 0;
  // For n_act rows of n_blocks Q8_0 blocks, arb bytes apart in `acts`.
  void compute(const uint8_t* acts, size_t arb, size_t n_act, size_t n_blocks);
};

// The Q4_0 x Q8_0 dot in the order of ggml's repacked Q4_0 kernels (ggml_gemv/gemm_q4_0_8x8_q8_0):
// per block in order acc = fma(float(exact sum of (q - 8) a), dw * da, acc). Bit-exact target
// of the 16-row Q4_0 kernel.
float dot_q4_0_rows_order_ref(const BlockQ4_0* w, const BlockQ8_0* act, size_t n);

}  // namespace dip
