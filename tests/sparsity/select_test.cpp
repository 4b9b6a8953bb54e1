// Masker building blocks: DIP's density split, top-k and threshold selection, DIP-CA
// rescoring, the modelled column cache, trace files and threshold calibration histograms.
#include "sparsity/select.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

#include "cache/column_cache.h"
#include "sparsity/calibration.h"
#include "sparsity/config.h"
#include "sparsity/trace.h"
#include "test_random.h"
#include "util/error.h"

namespace dip {
namespace {

TEST(SparsityConfig, OptimizedSplitMatchesTheMethodTable) {
  // method.md: keep 0.25 -> 0.314 / 0.122; 0.50 -> 0.574 / 0.351; 0.70 -> 0.757 / 0.587.
  const double want[3][3] = {{0.25, 0.314, 0.122}, {0.50, 0.574, 0.351}, {0.70, 0.757, 0.587}};
  for (const auto& w : want) {
    const LayerKeep k = dip_optimized_split(w[0]);
    EXPECT_NEAR(k.up, w[1], 1e-3);
    EXPECT_NEAR(k.down, w[2], 1e-3);
    EXPECT_NEAR(mlp_density_of(Method::kDip, k), w[0], 1e-9);
  }
}

TEST(SparsityConfig, DensitiesPerMethodAndBadValues) {
  SparsityConfig c;
  c.method = Method::kGlu;
  c.mlp_density = 0.7;
  resolve_keep(c, 2, 0, 0, "");
  EXPECT_NEAR(c.keep[0].down, 0.1, 1e-9);
  EXPECT_NEAR(c.mlp_density, 0.7, 1e-9);
  c.method = Method::kCats;
  resolve_keep(c, 2, 0, 0, "");
  EXPECT_NEAR(c.keep[1].down, 0.55, 1e-9);
  for (double bad : {0.0, -0.1, 1.5, double(NAN)}) {
    c.method = Method::kDip;
    c.mlp_density = bad;
    EXPECT_THROW(resolve_keep(c, 2, 0, 0, ""), Error) << bad;
  }
  c.method = Method::kGlu;
  c.mlp_density = 0.5;
  EXPECT_THROW(resolve_keep(c, 2, 0, 0, ""), Error);
  c.method = Method::kDip;
  EXPECT_THROW(resolve_keep(c, 2, 0.5, 0, ""), Error);  // --up-keep without --down-keep
  EXPECT_THROW(resolve_keep(c, 2, 1.2, 0.5, ""), Error);
  for (double g : {-0.1, 1.01}) {
    SparsityConfig d;
    d.gamma = g;
    EXPECT_THROW(validate(d), Error);
  }
  EXPECT_THROW(parse_method("dipca"), Error);
}

TEST(SparsityConfig, PerLayerKeepFile) {
  const std::string p = ::testing::TempDir() + "/keep_" + std::to_string(getpid()) + ".json";
  std::ofstream(p) << R"({"layers": [{"up": 0.5, "down": 0.25}, {"up": 1.0, "down": 0.5}]})";
  SparsityConfig c;
  c.method = Method::kDip;
  resolve_keep(c, 2, 0, 0, p);
  EXPECT_EQ(c.keep[0].up, 0.5);
  EXPECT_EQ(c.keep[1].down, 0.5);
  EXPECT_THROW(resolve_keep(c, 3, 0, 0, p), Error);  // written for another layer count
  std::ofstream(p) << R"({"layers": [{"up": 0.5}]})";
  EXPECT_THROW(resolve_keep(c, 1, 0, 0, p), Error);
}

// The reference: indices by score descending, equal scores by index ascending; the first k,
// in index order.
std::vector<int32_t> topk_reference(const std::vector<float>& s, size_t k) {
  std::vector<int32_t> ord(s.size());
  std::iota(ord.begin(), ord.end(), 0);
  std::stable_sort(ord.begin(), ord.end(),
                   [&](int32_t a, int32_t b) { return s[size_t(a)] > s[size_t(b)]; });
  ord.resize(std::min(k, s.size()));
  std::sort(ord.begin(), ord.end());
  return ord;
}

TEST(Select, TopKIsTheKLargestInAscendingOrder) {
  std::vector<int32_t> got;
  std::vector<uint32_t> scratch;
  std::uniform_real_distribution<float> u01(0.0f, 1.0f);
  for (size_t n : {1u, 7u, 100u, 1536u, 5632u}) {
    for (size_t k : {size_t(0), size_t(1), n / 3, n / 2 + 1, n - 1, n}) {
      for (int kind = 0; kind < 4; ++kind) {
        auto s = randn(n);
        if (kind == 0) {
          for (auto& v : s) v = std::fabs(v);  // DIP's |x|
        } else if (kind == 1) {
          for (auto& v : s) v = std::round(std::fabs(v) * 4.0f) / 4.0f;  // many ties, zeros
        } else if (kind == 2) {
          for (size_t i = 0; i < n; i += 3) s[i] = s[i] * 1e-30f;  // signed values, denormal range
          if (n > 10) {
            s[1] = -0.0f;
            s[2] = 0.0f;
            s[4] = INFINITY;
            s[6] = -INFINITY;
          }
        } else {
          for (auto& v : s)
            v = std::fabs(v) * (u01(rng()) < 0.5f ? 0.2f : 1.0f);  // DIP-CA's rescoring
        }
        if (n > 10) s[3] = s[5] = s[7];  // ties
        select_topk(s.data(), n, k, got, scratch);
        ASSERT_EQ(got, topk_reference(s, k)) << "n " << n << " k " << k << " kind " << kind;
      }
    }
  }
  const float s[] = {0.1f, 0.5f, 0.2f, 0.5f};
  select_threshold(s, 4, 0.2f, got);
  EXPECT_EQ(got, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(keep_count(0.001, 100), 1u);
  EXPECT_EQ(keep_count(0.5, 101), 51u);
}

TEST(Select, BlockTopKKeepsWholeRunsOfTheBestMeanScore) {
  std::vector<int32_t> got, block_idx;
  std::vector<float> block_score;
  std::vector<uint32_t> scratch;
  for (size_t n : {1u, 7u, 100u, 1536u, 5632u}) {
    for (uint32_t block : {1u, 2u, 3u, 8u, 64u}) {
      for (size_t k : {size_t(1), n / 3, n / 2 + 1, n}) {
        auto s = randn(n);
        for (auto& v : s) v = std::fabs(v);
        select_topk_blocks(s.data(), n, k, block, got, block_score, block_idx, scratch);
        // Reference: sort the blocks by mean score (ties to the lower block), take the best.
        const size_t nb = (n + block - 1) / block;
        std::vector<double> mean(nb, 0.0);
        for (size_t b = 0; b < nb; ++b) {
          const size_t lo = b * block, hi = std::min(n, lo + block);
          float sum = 0;
          for (size_t i = lo; i < hi; ++i) sum += s[i];
          mean[b] = sum / float(hi - lo);
        }
        std::vector<size_t> order(nb);
        std::iota(order.begin(), order.end(), size_t(0));
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return mean[a] > mean[b]; });
        const size_t kb = k == 0       ? 0
                          : block == 1 ? k
                                       : std::clamp<size_t>((k + block / 2) / block, 1, nb);
        std::vector<int32_t> want;
        for (size_t j = 0; j < kb; ++j)
          for (size_t i = order[j] * block; i < std::min(n, (order[j] + 1) * block); ++i)
            want.push_back(int32_t(i));
        std::sort(want.begin(), want.end());
        ASSERT_EQ(got, want) << "n " << n << " block " << block << " k " << k;
      }
    }
  }
  // In a stored order (a flash layout), blocks are runs of that order: the same choice as on the
  // scores laid out in that order, mapped back to the columns.
  for (uint32_t block : {2u, 4u, 7u}) {
    const size_t n = 1000, k = 300;
    auto s = randn(n);
    for (auto& v : s) v = std::fabs(v);
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), rng());
    std::vector<float> stored(n);
    for (size_t i = 0; i < n; ++i) stored[i] = s[order[i]];
    std::vector<int32_t> in_stored;
    select_topk_blocks(stored.data(), n, k, block, in_stored, block_score, block_idx, scratch);
    std::vector<int32_t> want;
    for (int32_t i : in_stored) want.push_back(int32_t(order[size_t(i)]));
    std::sort(want.begin(), want.end());
    select_topk_blocks(s.data(), n, k, block, got, block_score, block_idx, scratch, order.data());
    ASSERT_EQ(got, want) << "block " << block;
  }
  // Two blocks of 4 out of 16 columns: the runs [4, 8) and [12, 16), whatever single columns
  // elsewhere score.
  std::vector<float> s(16, 0.1f);
  s[0] = 5.0f;
  for (int i : {4, 5, 6, 7, 12, 13, 14, 15}) s[size_t(i)] = 1.0f;
  select_topk_blocks(s.data(), 16, 8, 4, got, block_score, block_idx, scratch);
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));  // mean of [0,4) is 1.325
  s[0] = 1.0f;
  select_topk_blocks(s.data(), 16, 8, 4, got, block_score, block_idx, scratch);
  EXPECT_EQ(got, (std::vector<int32_t>{4, 5, 6, 7, 12, 13, 14, 15}));
  SparsityConfig c;
  c.mask_block_down = 0;
  EXPECT_THROW(validate(c), Error);
  c.mask_block_down = 4;
  c.use_thresholds = true;
  EXPECT_THROW(validate(c), Error);
}

TEST(Select, CacheAwareRescoring) {
  std::vector<float> scratch;
  float s[] = {1.0f, 4.0f, 2.0f, 3.0f};
  const uint8_t cached[] = {1, 0, 0, 0};
  cache_aware_scores(s, 4, cached, 0.5, 1, false, scratch);  // index 1 is the top-1: protected
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(s[1], 4.0f);
  EXPECT_EQ(s[2], 1.0f);
  EXPECT_EQ(s[3], 1.5f);
  float b[] = {1.0f, 4.0f};
  const uint8_t c2[] = {1, 0};
  cache_aware_scores(b, 2, c2, 0.25, 0, true, scratch);
  EXPECT_FLOAT_EQ(b[0], 0.25f + 0.75f);
  EXPECT_FLOAT_EQ(b[1], 1.0f);
  EXPECT_EQ(warmup_gamma(0.2, 0), 1.0);
  EXPECT_NEAR(warmup_gamma(0.2, 4), 1 - 0.8 * 0.8, 1e-12);
  EXPECT_NEAR(warmup_gamma(0.2, 400), 0.2, 1e-12);
  float one[] = {2.0f, 1.0f};
  const uint8_t none[] = {0, 0};
  cache_aware_scores(one, 2, none, 1.0, 0, false, scratch);  // gamma 1 = plain DIP
  EXPECT_EQ(one[0], 2.0f);
}

TEST(ColumnCache, LruAndLfuEvictAsTheirNamesSay) {
  ColumnCache lru(10, 3, CachePolicy::kLru);
  const int32_t a[] = {0, 1, 2};
  EXPECT_EQ(lru.access(a, 3), 0u);
  const int32_t b[] = {0};
  EXPECT_EQ(lru.access(b, 1), 1u);
  const int32_t c[] = {5};  // evicts the least recently used of {1, 2}: 1
  lru.access(c, 1);
  EXPECT_TRUE(lru.contains(0) && !lru.contains(1) && lru.contains(2) && lru.contains(5));
  EXPECT_EQ(lru.size(), 3u);

  ColumnCache lfu(10, 2, CachePolicy::kLfu);
  const int32_t x[] = {3}, y[] = {4}, z[] = {6};
  lfu.access(x, 1);
  lfu.access(x, 1);
  lfu.access(y, 1);
  lfu.access(z, 1);  // 4 was used once, 3 twice: 4 goes although 3 is older
  EXPECT_TRUE(lfu.contains(3) && !lfu.contains(4) && lfu.contains(6));
  EXPECT_EQ(lfu.hits(), 1u);
  EXPECT_EQ(lfu.accesses(), 4u);

  // Random use never exceeds the capacity; a token's own columns are never evicted for it.
  ColumnCache r(200, 50, CachePolicy::kLru);
  std::vector<int32_t> all(200);
  std::iota(all.begin(), all.end(), 0);
  for (int t = 0; t < 100; ++t) {
    std::shuffle(all.begin(), all.end(), rng());
    std::vector<int32_t> use(all.begin(), all.begin() + 80);
    std::sort(use.begin(), use.end());
    std::vector<uint8_t> hit(use.size());
    const size_t h = r.access(use.data(), use.size(), hit.data());
    ASSERT_LE(r.size(), 50u);
    ASSERT_EQ(size_t(std::count(hit.begin(), hit.end(), 1)), h);
  }
}

TEST(Trace, RoundTripAndBadFiles) {
  const std::string p = ::testing::TempDir() + "/trace_" + std::to_string(getpid()) + ".bin";
  TraceHeader h;
  h.n_layer = 2;
  h.n_embd = 10;
  h.n_ff = 20;
  h.flags = 1;
  h.method = Method::kDipCa;
  {
    TraceWriter w(p, h);
    for (int t = 0; t < 3; ++t) {
      const std::vector<int32_t> up = {0, 9, t}, down = {1, 19};
      const uint8_t uh[] = {1, 0, 0}, dh[] = {0, 1};
      w.add_layer(uint32_t(t), 0, up, down, uh, dh);
      w.add_layer(uint32_t(t), 1, up, down, uh, dh);
    }
    w.close();
  }
  {
    // A writer destroyed without close() (an error midway) leaves the finished trace as it was.
    TraceWriter interrupted(p, h);
    const std::vector<int32_t> up = {1}, down = {2};
    interrupted.add_layer(0, 0, up, down, nullptr, nullptr);
  }
  const Trace tr = read_trace(p);
  EXPECT_EQ(tr.header.n_tokens, 3u);
  EXPECT_EQ(tr.header.method, Method::kDipCa);
  const uint8_t* r = tr.record(2);
  EXPECT_EQ(r[0], (1u << 0) | (1u << 2));  // inputs 0 and 2
  EXPECT_EQ(r[1], 1u << 1);                // input 9
  EXPECT_EQ(r[2], 1u << 1);                // down column 1
  const uint8_t* hits = r + 2 * (2 + 3);
  EXPECT_EQ(hits[0], 1u);           // input 0 was a hit
  EXPECT_EQ(hits[2 + 2], 1u << 3);  // down column 19 was a hit
  // Truncated: one byte short.
  {
    std::ifstream in(p, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(p, std::ios::binary) << all.substr(0, all.size() - 1);
  }
  EXPECT_THROW(read_trace(p), Error);
  std::ofstream(p, std::ios::binary)
      << "NOTATRACE and some more bytes to fill a header......................";
  EXPECT_THROW(read_trace(p), Error);
}

TEST(Calibration, HistogramQuantiles) {
  MagnitudeHistogram h;
  std::vector<float> v(100000);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (auto& x : v) x = u(rng());
  h.add(v.data(), v.size());
  // |x| is uniform on [0, 2]: keeping a fraction k means a threshold of 2 (1 - k).
  for (double k : {0.1, 0.25, 0.5, 0.9})
    EXPECT_NEAR(h.threshold_for_keep(k), 2.0 * (1.0 - k), 0.02) << k;
  EXPECT_EQ(h.threshold_for_keep(1.0), 0.0f);
}

}  // namespace
}  // namespace dip
