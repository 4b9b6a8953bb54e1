#include "flash/flash_layout.h"

#include <algorithm>
#include <bit>

#include "util/error.h"
#include "util/threadpool.h"

namespace dip {

namespace {

size_t popcount(const uint64_t* a, size_t words) {
  size_t n = 0;
  for (size_t w = 0; w < words; ++w) n += size_t(std::popcount(a[w]));
  return n;
}

size_t common(const uint64_t* a, const uint64_t* b, size_t words) {
  size_t n = 0;
  for (size_t w = 0; w < words; ++w) n += size_t(std::popcount(a[w] & b[w]));
  return n;
}

}  // namespace

std::vector<uint32_t> coactivation_slots(const KeptColumns& kept, ThreadPool& pool) {
  const size_t n = kept.n_cols, W = kept.words;
  if (kept.bits.size() != n * W) fail("internal: kept-column bitsets of the wrong size");
  std::vector<uint32_t> count(n);
  for (size_t c = 0; c < n; ++c) count[c] = uint32_t(popcount(&kept.bits[c * W], W));
  std::vector<uint32_t> chain;
  chain.reserve(n);
  std::vector<uint8_t> placed(n, 0);
  // The columns still to place that were ever kept; the rest go last.
  std::vector<uint32_t> open;
  for (size_t c = 0; c < n; ++c) {
    if (count[c] > 0) open.push_back(uint32_t(c));
  }
  if (!open.empty()) {
    uint32_t cur = *std::max_element(open.begin(), open.end(), [&](uint32_t a, uint32_t b) {
      return count[a] < count[b] || (count[a] == count[b] && a > b);
    });
    const int n_threads = pool.size();
    struct Best {
      double sim = -1;
      uint32_t col = UINT32_MAX;
    };
    std::vector<Best> best(size_t(n_threads) * 8);  // one per thread, on its own cache line
    while (true) {
      chain.push_back(cur);
      placed[cur] = 1;
      // Drop placed columns from the open list (swap-free compaction keeps index order).
      open.erase(std::remove_if(open.begin(), open.end(), [&](uint32_t c) { return placed[c]; }),
                 open.end());
      if (open.empty()) break;
      const uint64_t* a = &kept.bits[size_t(cur) * W];
      const size_t ca = count[cur];
      std::fill(best.begin(), best.end(), Best{});
      // One part of the open list per thread, each with its own result slot.
      const size_t parts = std::min<size_t>(size_t(n_threads), (open.size() + 255) / 256);
      pool.parallel_for(parts, 1, [&](size_t p0, size_t p1) {
        for (size_t part = p0; part < p1; ++part) {
          const size_t b0 = part * open.size() / parts, b1 = (part + 1) * open.size() / parts;
          Best local;
          for (size_t i = b0; i < b1; ++i) {
            const uint32_t c = open[i];
            const size_t both = common(a, &kept.bits[size_t(c) * W], W);
            const double sim = double(both) / double(ca + count[c] - both);
            if (sim > local.sim || (sim == local.sim && c < local.col)) local = {sim, c};
          }
          best[part * 8] = local;
        }
      });
      Best pick;
      for (size_t t = 0; t < best.size(); t += 8) {
        if (best[t].sim > pick.sim || (best[t].sim == pick.sim && best[t].col < pick.col))
          pick = best[t];
      }
      cur = pick.col;
    }
  }
  for (size_t c = 0; c < n; ++c) {
    if (count[c] == 0) chain.push_back(uint32_t(c));
  }
  std::vector<uint32_t> slots(n);
  for (size_t p = 0; p < n; ++p) slots[chain[p]] = uint32_t(p);
  return slots;
}

double adjacency(const KeptColumns& kept, const std::vector<uint32_t>& slots) {
  const size_t n = kept.n_cols, W = kept.words;
  std::vector<uint32_t> in_slot(n);
  for (size_t c = 0; c < n; ++c) in_slot[slots[c]] = uint32_t(c);
  size_t total = 0, joined = 0;
  for (size_t p = 0; p < n; ++p) {
    const uint64_t* a = &kept.bits[size_t(in_slot[p]) * W];
    total += popcount(a, W);
    if (p > 0) joined += common(a, &kept.bits[size_t(in_slot[p - 1]) * W], W);
  }
  return total ? double(joined) / double(total) : 0.0;
}

}  // namespace dip
