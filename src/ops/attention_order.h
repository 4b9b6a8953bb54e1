// The F16 attention products in llama.cpp's exact float order (flash attention off, CPU):
// scores q.k and the probability-weighted sum of V rows, with q and the probabilities rounded
// to F16 as ggml does. ggml takes one of two paths per product, and each has its own order:
//   kVecDot   ggml_vec_dot_f16 (one token, or sizes tinyBLAS refuses): four 16-lane
//             accumulators over steps of 64 elements, combined (0 + 2) + (1 + 3), a 16-lane
//             tree sum, then the elements past the last full step added in double.
//   kTinyBlas llamafile's tinyBLAS on AVX-512 (batches of two or more tokens, length a
//             multiple of 16): one 16-lane accumulator over chunks of 16, the same tree.
// The tree is GCC's _mm512_reduce_add_ps: lanes l + (l + 8), then + (l + 4), then
// (0 + 2) + (1 + 3). Matching it bit for bit matters because the F16 roundings of q and of
// the probabilities amplify a last-bit difference into a visible one (see
// docs/differential-results.md). Inputs are floats that hold F16 values.
#pragma once
#include <cstddef>
#include <cstdint>

namespace dip {

enum class F16DotOrder { kVecDot, kTinyBlas };

// The path ggml takes for a product over k elements with m result rows in a batch of
// `batch` tokens (tinyBLAS needs k % 16 == 0 and m % 4 == 0, and two or more tokens).
inline F16DotOrder ggml_f16_order(size_t batch, size_t k, size_t m) {
  return batch >= 2 && k % 16 == 0 && m % 4 == 0 ? F16DotOrder::kTinyBlas : F16DotOrder::kVecDot;
}

// sum x[i] y[i], i < n, in `order` (kTinyBlas needs n % 16 == 0).
float f16_dot_ref(F16DotOrder order, const float* x, const float* y, size_t n);
// scores[j] = f16_dot(order, k + j * k_stride, q, hd) * scale for j in [j0, j1), the key rows
// floats that hold F16 values or the F16 values themselves (widening F16 is exact: the same
// sums).
void f16_score_rows_simd(F16DotOrder order, const float* k, size_t k_stride, size_t j0, size_t j1,
                         const float* q, size_t hd, float scale, float* scores);
void f16_score_rows_simd(F16DotOrder order, const uint16_t* k, size_t k_stride, size_t j0,
                         size_t j1, const float* q, size_t hd, float scale, float* scores);

// out[d] = sum over j in [j0, j1) of p[j] * v[j * v_stride + d], d < hd, in the order of a
// product over the whole key range starting at position 0 (lane j % 16, and for kVecDot
// accumulator (j % 64) / 16; llama.cpp's key range is a multiple of 256 long, so it has no
// double-precision tail). Entries outside [j0, j1) are zero probabilities and add nothing.
// scratch holds 64 * hd floats.
void f16_weighted_sum_ref(F16DotOrder order, const float* p, const float* v, size_t v_stride,
                          size_t j0, size_t j1, size_t hd, float* out);
void f16_weighted_sum_simd(F16DotOrder order, const float* p, const float* v, size_t v_stride,
                           size_t j0, size_t j1, size_t hd, float* scratch, float* out);
// The same with the V rows the F16 values themselves.
void f16_weighted_sum_simd(F16DotOrder order, const float* p, const uint16_t* v, size_t v_stride,
                           size_t j0, size_t j1, size_t hd, float* scratch, float* out);

// ggml_vec_soft_max_f32's sum of e[j] for j in [j0, j1) (zeros elsewhere): 16-element chunks
// aligned at position 0, each tree-summed in float, accumulated in double.
double softmax_sum_ggml(const float* e, size_t j0, size_t j1);

// The 16-lane tree sum described above.
inline float tree_sum16(const float* a) {
  float t8[8], t4[4];
  for (int i = 0; i < 8; ++i) t8[i] = a[i] + a[i + 8];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i] + t8[i + 4];
  return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

}  // namespace dip
