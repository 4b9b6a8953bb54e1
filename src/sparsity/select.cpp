#include "sparsity/select.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace dip {

namespace {
// An unsigned key with the order of the floats: positive floats keep their bits with the sign
// bit set, negative ones are flipped; -0 maps to +0's key (they compare equal as floats).
inline uint32_t order_key(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
}  // namespace

void select_topk(const float* score, size_t n, size_t k, std::vector<int32_t>& out, std::vector<uint32_t>& scratch) {
  out.clear();
  if (k == 0 || n == 0) return;
  if (k >= n) {
    out.resize(n);
    for (size_t i = 0; i < n; ++i) out[i] = int32_t(i);
    return;
  }
  // Radix select of the k-th largest key, 11 + 11 + 10 bits: each pass histograms the keys that
  // share the digits found so far and walks the buckets from the top. Two or three passes over
  // n floats, no comparisons sorting: this runs on one thread for every layer of every token.
  scratch.resize(n);
  uint32_t* key = scratch.data();
  for (size_t i = 0; i < n; ++i) key[i] = order_key(score[i]);
  constexpr int kShift[3] = {21, 10, 0};
  constexpr uint32_t kBuckets[3] = {2048, 2048, 1024};
  uint32_t prefix = 0, prefix_mask = 0;  // the digits fixed so far
  size_t above = 0;                     // keys known to be above the k-th
  size_t hist[2048];
  for (int pass = 0; pass < 3; ++pass) {
    const uint32_t nb = kBuckets[pass];
    std::fill(hist, hist + nb, size_t(0));
    for (size_t i = 0; i < n; ++i) {
      if ((key[i] & prefix_mask) == prefix) ++hist[(key[i] >> kShift[pass]) & (nb - 1)];
    }
    uint32_t b = nb - 1;
    while (above + hist[b] < k) above += hist[b--];
    prefix |= b << kShift[pass];
    prefix_mask |= (nb - 1) << kShift[pass];
  }
  const uint32_t kth = prefix;
  size_t ties = k - above;  // how many keys equal to the k-th are taken (lowest indices first)
  out.reserve(k);
  for (size_t i = 0; i < n; ++i) {
    if (key[i] > kth) {
      out.push_back(int32_t(i));
    } else if (key[i] == kth && ties > 0) {
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
