// Weight matrices repacked eight rows at a time for the AVX2 kernels, as ggml repacks Q4_0 and
// Q4_K for its own (its q4_0_8x8 and q4_K_8x8 forms; these are laid out for dip's kernels). A
// repacked matrix has the GGUF layout's size: per group of eight rows and block b, one
// kX8BlockBytes(type) unit holding block b of each of the eight rows.
//
// Q4_0 (qdot_q4_0_x8_avx2.cpp), 144 bytes: the eight rows' fp16 scales, then four 32-byte
// chunks; chunk j holds bytes 4j .. 4j + 3 of each row's 16 quant bytes, row r in bytes
// 4r .. 4r + 3 (low nibbles: elements 4j .. 4j + 3; high: 16 + 4j ..).
//
// Q4_K (qdot_q4_k_x8_avx2.cpp), 1152 bytes: the eight rows' fp16 d, their fp16 dmin, 96 bytes
// of 6-bit scales and mins (below), then 32 chunks of 32 bytes; chunk 8k + j holds bytes
// 4j .. 4j + 3 of each row's qs[32k .. 32k + 31], row r in bytes 4r .. 4r + 3 (low nibbles:
// sub-block 2k, high nibbles: sub-block 2k + 1). The 128 six-bit values v: v[8j + r] the scale
// of sub-block j of row r, v[64 + 16p + 2r + e] the min of sub-block 2p + e of row r; byte i < 64
// holds the low four bits of v[i] (low nibble) and v[i + 64], byte 64 + m (m < 32) the high two
// bits of v[m], v[m + 32], v[m + 64] and v[m + 96] (bits 0-1, 2-3, 4-5, 6-7). That order unpacks
// with a few whole-register operations into the vectors the kernel multiplies by.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/tensor_types.h"

namespace dip {

struct EncodedActs;
class ThreadPool;

// Repacks rows [0, rows) of a matrix of type t (rows of n elements, GGUF layout) into `out`
// (the same size). rows % 8 == 0, t Q4_0 or Q4_K.
void repack_x8(TensorType t, const uint8_t* w, size_t rows, size_t n, uint8_t* out);

// Whether this CPU runs the repacked kernel of t (AVX2, FMA, F16C).
bool x8_available(TensorType t);
// Whether dense products of t should take it: CPUs with AVX2 but without AVX-512 VNNI (those run
// their own kernels on the GGUF layout; Q4_0's 16-row kernel, qdot_q4_0_rows_avx512.cpp, sums in
// the same order).
bool x8_preferred(TensorType t);

// y[b * y_stride + r] = dot(W[r], act[b]) for r in [r0, r1) (multiples of 8, or r1 = rows) and
// b < n_act; `packed` from repack_x8, activations (Q8_0 for Q4_0, Q8_K for Q4_K) rows
// arow_bytes apart. Q4_0 sums in dot_q4_0_rows_order_ref's order, Q4_K in dot_k's, bit for bit.
// Call only where x8_available(t).
void qmatmul_x8(TensorType t, const uint8_t* packed, size_t n, const uint8_t* acts,
                size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1);

// y[b * y_stride + r] = dot(W[r], acts[b]) for every row (rows % 8 == 0) and activation row
// (encoded for t); the rows spread over the pool in groups of eight.
void matmul_x8(TensorType t, const uint8_t* packed, size_t n, size_t rows, const EncodedActs& acts,
               float* y, size_t y_stride, ThreadPool* pool);

}  // namespace dip
