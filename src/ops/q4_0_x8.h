// Q4_0 matrices repacked eight rows at a time for the AVX2 kernel (qdot_q4_0_x8_avx2.cpp), as
// ggml repacks them for its own (its q4_0_8x8 form; this one is laid out for this kernel). Per
// group of eight rows and block b (kQ4x8BlockBytes, the eight blocks' size): the eight rows'
// fp16 scales, then four 32-byte chunks; chunk j holds bytes 4j .. 4j + 3 of each row's 16 quant
// bytes, row r in bytes 4r .. 4r + 3 (low nibbles: elements 4j .. 4j + 3; high: 16 + 4j ..).
#pragma once
#include <cstddef>
#include <cstdint>

namespace dip {

struct EncodedActs;
class ThreadPool;

constexpr size_t kQ4x8BlockBytes = 8 * 18;

// Repacks rows [0, rows) of a Q4_0 matrix (rows of n elements, GGUF layout) into `out`
// (rows * n / 32 * 18 bytes, the same size). rows % 8 == 0.
void repack_q4_0_x8(const uint8_t* w, size_t rows, size_t n, uint8_t* out);

// Whether this CPU runs the repacked kernel (AVX2, FMA, F16C).
bool q4_0_x8_available();
// Whether dense products should take it: CPUs with AVX2 but without AVX-512 VNNI (those run the
// 16-row kernel on the GGUF layout, qdot_q4_0_rows_avx512.cpp, which sums in the same order).
bool q4_0_x8_preferred();

// y[b * y_stride + r] = dot(W[r], act[b]) for r in [r0, r1) (multiples of 8, or r1 = rows) and
// b < n_act; `packed` from repack_q4_0_x8, activations Q8_0 rows arow_bytes apart. Sums in
// dot_q4_0_rows_order_ref's order, bit for bit. Call only where q4_0_x8_available().
void qmatmul_q4_0_x8(const uint8_t* packed, size_t n, const uint8_t* acts, size_t arow_bytes,
                     size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1);

// y[b * y_stride + r] = dot(W[r], acts[b]) for every row (rows % 8 == 0) and activation row
// (Q8_0-encoded); the rows spread over the pool in groups of eight.
void matmul_q4_0_x8(const uint8_t* packed, size_t n, size_t rows, const EncodedActs& acts, float* y,
                    size_t y_stride, ThreadPool* pool);

}  // namespace dip
