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

void select_topk(const float* score, size_t n, size_t k, std::vector<int32_t>& out,
                 std::vector<uint32_t>& scratch) {
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
  scratch.resize(2 * n);
  uint32_t* key = scratch.data();
  uint32_t* cand = key + n;  // keys that share the digits found so far
  for (size_t i = 0; i < n; ++i) key[i] = order_key(score[i]);
  constexpr int kShift[3] = {21, 10, 0};
  constexpr uint32_t kBuckets[3] = {2048, 2048, 1024};
  uint32_t prefix = 0;  // the digits fixed so far
  size_t above = 0;     // keys known to be above the k-th
  size_t hist[2048];
  const uint32_t* in = key;
  size_t n_in = n;
  for (int pass = 0; pass < 3; ++pass) {
    const uint32_t nb = kBuckets[pass];
    std::fill(hist, hist + nb, size_t(0));
    for (size_t i = 0; i < n_in; ++i) ++hist[(in[i] >> kShift[pass]) & (nb - 1)];
    uint32_t b = nb - 1;
    while (above + hist[b] < k) above += hist[b--];
    prefix |= b << kShift[pass];
    if (pass == 2) break;
    // Keep the keys in bucket b (branch-free compaction; in-place is safe, m <= i).
    const uint32_t hi_mask = ~((uint32_t(1) << kShift[pass]) - 1);
    size_t m = 0;
    for (size_t i = 0; i < n_in; ++i) {
      cand[m] = in[i];
      m += (in[i] & hi_mask) == prefix;
    }
    in = cand;
    n_in = m;
  }
  const uint32_t kth = prefix;
  size_t ties = k - above;  // how many keys equal to the k-th are taken (lowest indices first)
  // Branch-free: every index is written, the count advances only for a kept one (k + 1 slots).
  out.resize(k + 1);
  int32_t* o = out.data();
  size_t j = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool eq = key[i] == kth && ties > 0;
    o[j] = int32_t(i);
    j += (key[i] > kth) | eq;
    ties -= eq;
  }
  out.resize(k);
}

void select_topk_blocks(const float* score, size_t n, size_t k, uint32_t block,
                        std::vector<int32_t>& out, std::vector<float>& block_score,
                        std::vector<int32_t>& block_idx, std::vector<uint32_t>& scratch,
                        const uint32_t* order) {
  if (block <= 1) return select_topk(score, n, k, out, scratch);
  const auto col = [order](size_t i) { return order ? size_t(order[i]) : i; };
  out.clear();
  if (k == 0 || n == 0) return;
  const size_t n_blocks = (n + block - 1) / block;
  block_score.resize(n_blocks);
  for (size_t b = 0; b < n_blocks; ++b) {
    const size_t lo = b * block, hi = std::min(n, lo + block);
    float sum = 0;
    for (size_t i = lo; i < hi; ++i) sum += score[col(i)];
    block_score[b] = sum / float(hi - lo);
  }
  // Nearest whole number of blocks, so that the kept share stays the asked one on average.
  const size_t kb = std::clamp<size_t>((k + block / 2) / block, 1, n_blocks);
  select_topk(block_score.data(), n_blocks, kb, block_idx, scratch);
  for (int32_t b : block_idx) {
    const size_t lo = size_t(b) * block, hi = std::min(n, lo + block);
    for (size_t i = lo; i < hi; ++i) out.push_back(int32_t(col(i)));
  }
  if (order) std::sort(out.begin(), out.end());
}

void select_threshold(const float* score, size_t n, float threshold, std::vector<int32_t>& out) {
  out.clear();
  for (size_t i = 0; i < n; ++i) {
    if (score[i] >= threshold) out.push_back(int32_t(i));
  }
}

void cache_aware_scores(float* score, size_t n, const uint8_t* cached, double gamma,
                        uint32_t fixed_top_n, bool alpha_blend, std::vector<float>& scratch) {
  if (alpha_blend) {
    for (size_t i = 0; i < n; ++i)
      score[i] = float(gamma * score[i] + (1.0 - gamma) * (cached[i] ? 1.0 : 0.0));
    return;
  }
  float protect = INFINITY;  // scores >= this are among the fixed_top_n largest
  if (fixed_top_n > 0) {
    const size_t k = std::min<size_t>(fixed_top_n, n);
    scratch.assign(score, score + n);
    std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(),
                     std::greater<float>());
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
