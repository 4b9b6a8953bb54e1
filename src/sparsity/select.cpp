#include "sparsity/select.h"

#include <algorithm>
#include <cmath>

namespace dip {

void select_topk(const float* score, size_t n, size_t k, std::vector<int32_t>& out, std::vector<float>& scratch) {
  out.clear();
  if (k == 0 || n == 0) return;
  if (k >= n) {
    out.resize(n);
    for (size_t i = 0; i < n; ++i) out[i] = int32_t(i);
    return;
  }
  scratch.assign(score, score + n);
  std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<float>());
  const float kth = scratch[k - 1];
  size_t above = 0;
  for (size_t i = 0; i < n; ++i) above += score[i] > kth;
  size_t ties = k - above;  // how many scores equal to the k-th value are taken
  out.reserve(k);
  for (size_t i = 0; i < n; ++i) {
    if (score[i] > kth) {
      out.push_back(int32_t(i));
    } else if (score[i] == kth && ties > 0) {
      out.push_back(int32_t(i));
      --ties;
    }
  }
}

void select_threshold(const float* score, size_t n, float threshold, std::vector<int32_t>& out) {
  out.clear();
  for (size_t i = 0; i < n; ++i) {
    if (score[i] >= threshold) out.push_back(int32_t(i));
  }
}

void cache_aware_scores(float* score, size_t n, const uint8_t* cached, double gamma, uint32_t fixed_top_n,
                        bool alpha_blend, std::vector<float>& scratch) {
  if (alpha_blend) {
    for (size_t i = 0; i < n; ++i) score[i] = float(gamma * score[i] + (1.0 - gamma) * (cached[i] ? 1.0 : 0.0));
    return;
  }
  float protect = INFINITY;  // scores >= this are among the fixed_top_n largest
  if (fixed_top_n > 0) {
    const size_t k = std::min<size_t>(fixed_top_n, n);
    scratch.assign(score, score + n);
    std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<float>());
    protect = scratch[k - 1];
  }
  const float g = float(gamma);
  for (size_t i = 0; i < n; ++i) {
    if (!cached[i] && score[i] < protect) score[i] *= g;
  }
}

double warmup_gamma(double gamma, uint32_t t) {
  return 1.0 - (1.0 - gamma) * (1.0 - std::pow(gamma, double(t) / 4.0));
}

size_t keep_count(double keep, size_t n) {
  const auto k = size_t(std::llround(keep * double(n)));
  return std::clamp<size_t>(k, 1, n);
}

}  // namespace dip
