// Scalar references of the attention products in llama.cpp's order (attention_order.h).
#include "ops/attention_order.h"

#include <algorithm>
#include <cmath>

namespace dip {

float f16_dot_ref(F16DotOrder order, const float* x, const float* y, size_t n) {
  float lanes[16] = {};
  if (order == F16DotOrder::kTinyBlas) {
    for (size_t i = 0; i + 16 <= n; i += 16)
      for (int l = 0; l < 16; ++l) lanes[l] = std::fma(x[i + l], y[i + l], lanes[l]);
    return tree_sum16(lanes);
  }
  const size_t np = n & ~size_t(63);
  float acc[4][16] = {};
  for (size_t i = 0; i < np; i += 64)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 16; ++l)
        acc[s][l] = std::fma(x[i + 16 * s + l], y[i + 16 * s + l], acc[s][l]);
  for (int l = 0; l < 16; ++l) lanes[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  double sum = tree_sum16(lanes);
  for (size_t i = np; i < n; ++i) sum += double(x[i] * y[i]);
  return float(sum);
}

void f16_weighted_sum_ref(F16DotOrder order, const float* p, const float* v, size_t v_stride,
                          size_t j0, size_t j1, size_t hd, float* out) {
  const size_t slots = order == F16DotOrder::kTinyBlas ? 16 : 64;
  for (size_t d = 0; d < hd; ++d) {
    float acc[64] = {};
    for (size_t j = j0; j < j1; ++j)
      acc[j % slots] = std::fma(p[j], v[j * v_stride + d], acc[j % slots]);
    float lanes[16];
    for (int l = 0; l < 16; ++l) {
      lanes[l] = order == F16DotOrder::kTinyBlas
                     ? acc[l]
                     : (acc[l] + acc[32 + l]) + (acc[16 + l] + acc[48 + l]);
    }
    out[d] = tree_sum16(lanes);
  }
}

double softmax_sum_ggml(const float* e, size_t j0, size_t j1) {
  double sum = 0.0;
  for (size_t c = j0 & ~size_t(15); c < j1; c += 16) {
    float lanes[16];
    for (size_t l = 0; l < 16; ++l) lanes[l] = c + l >= j0 && c + l < j1 ? e[c + l] : 0.0f;
    sum += double(tree_sum16(lanes));
  }
  return sum;
}

}  // namespace dip
