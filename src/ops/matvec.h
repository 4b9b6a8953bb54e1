// Matrix-vector and small matrix-matrix products of ggml-typed weights with encoded
// activations. Weights are row-major: row r holds the n inputs of output r (ggml's layout).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/tensor_types.h"

namespace dip {

class ThreadPool;

// An activation row encoded for a given weight type (see activation_type()).
struct EncodedActs {
  TensorType type = TensorType::F32;
  size_t n = 0;          // elements per row
  size_t row_bytes = 0;  // bytes per encoded row
  size_t rows = 0;
  std::vector<uint8_t> data;
  // For one F16/BF16 row: the same (already rounded) values as floats, so the one-token kernel
  // converts the activation once instead of once per weight row.
  std::vector<float> decoded;
  const void* row(size_t i) const { return data.data() + i * row_bytes; }
};

// Encodes `rows` rows of n floats (stride `stride` floats) for multiplication with `weight`.
void encode_acts(TensorType weight, const float* x, size_t n, size_t rows, size_t stride,
                 EncodedActs& out);

// y[b * y_stride + r] = dot(W[r, :], act[b]) for r < rows, b < acts.rows.
void matmul(TensorType wt, const void* w, size_t n, size_t rows, const EncodedActs& acts, float* y,
            size_t y_stride, ThreadPool* pool);

// SIMD dot product of one weight row with one encoded activation row (dispatch included).
float dot_simd(TensorType wt, const void* w, const void* act, size_t n);

}  // namespace dip
