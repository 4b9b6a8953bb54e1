// K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) in ggml's block layouts: dequantize, quantize, and the
// dot product with Q8_K activations, as ggml computes them (integer sums per sub-block, scaled per
// super-block). Scalar code: the reference for any SIMD kernel and, for now, the kernel itself.
#pragma once
#include <cstddef>
#include <cstdint>

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

// A Q8_K block's bsums from its quants: the sum of each 16.
inline void q8k_block_sums(BlockQ8K& b) {
  for (size_t j = 0; j < kQK_K / 16; ++j) {
    int sum = 0;
    for (size_t l = 0; l < 16; ++l) sum += b.qs[16 * j + l];
    b.bsums[j] = int16_t(sum);
  }
}

// Q4_K/Q5_K: scale and min j (0..7, 6 bits each) from the 12 packed bytes.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = uint8_t((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q3_K: signed scale j (-32..31) from the 12 packed bytes: low nibble in byte j (j < 8) or the
// high nibble of byte j - 8, the two high bits in byte 8 + j % 4 at bit 2 (j / 4); stored with
// a bias of 32.
inline int q3k_scale(const uint8_t* scales, int j) {
  const int lo = j < 8 ? scales[j] & 0x0f : scales[j - 8] >> 4;
  const int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

// dot(W row of type t, activation row) over n elements.
float dot_k(TensorType t, const void* w, const BlockQ8K* act, size_t n);

}  // namespace dip
