#include "cache/column_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "test_random.h"

namespace dip {
namespace {

// The slots the flash store reads into: every resident column owns one distinct slot below the
// capacity; a token's hits keep theirs; misses get free or evicted slots, -1 only when the token
// has more misses than the cache has room.
TEST(ColumnCache, SlotsStayDistinctAndFollowResidency) {
  for (CachePolicy pol : {CachePolicy::kLru, CachePolicy::kLfu}) {
    const size_t n = 300, cap = 70;
    ColumnCache cache(n, cap, pol);
    std::vector<int32_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    for (int step = 0; step < 200; ++step) {
      std::vector<int32_t> cols = all;
      std::shuffle(cols.begin(), cols.end(), rng());
      cols.resize(1 + rng()() % (step % 10 == 0 ? n : 90));  // sometimes more misses than room
      std::sort(cols.begin(), cols.end());
      std::vector<int32_t> before(cols.size());
      for (size_t i = 0; i < cols.size(); ++i) before[i] = cache.slot(size_t(cols[i]));
      std::vector<uint8_t> hit(cols.size());
      std::vector<int32_t> slots(cols.size());
      cache.access(cols.data(), cols.size(), hit.data(), slots.data());
      size_t unadmitted = 0;
      for (size_t i = 0; i < cols.size(); ++i) {
        if (hit[i]) {
          ASSERT_EQ(slots[i], before[i]) << "a hit keeps its slot";
        } else {
          ASSERT_EQ(before[i], -1);
        }
        ASSERT_EQ(slots[i], cache.slot(size_t(cols[i])));
        unadmitted += slots[i] < 0;
      }
      std::set<int32_t> used;
      size_t resident = 0;
      for (size_t c = 0; c < n; ++c) {
        const int32_t s = cache.slot(c);
        ASSERT_EQ(s >= 0, cache.contains(c));
        if (s < 0) continue;
        ++resident;
        ASSERT_LT(size_t(s), cap);
        ASSERT_TRUE(used.insert(s).second) << "slot " << s << " held twice";
      }
      ASSERT_EQ(resident, cache.size());
      ASSERT_LE(resident, cap);
      if (cols.size() <= cap) {
        ASSERT_EQ(unadmitted, 0u) << "room for every miss";
      }
    }
  }
}

// The policies against a direct model of their definition: evict, among resident columns the
// token does not use, the least recently used (LRU) or least frequently used, then least
// recently (LFU); equal ages by lower index first; misses admitted in index order.
TEST(ColumnCache, EvictsWhatThePolicySays) {
  for (CachePolicy pol : {CachePolicy::kLru, CachePolicy::kLfu}) {
    const size_t n = 400, cap = 120;
    ColumnCache cache(n, cap, pol);
    std::vector<uint8_t> resident(n, 0);
    std::vector<uint64_t> last(n, 0), uses(n, 0);
    std::vector<int32_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    for (uint64_t t = 1; t <= 300; ++t) {
      std::vector<int32_t> cols = all;
      // A skewed draw (low indices more often) so that recency and frequency disagree.
      std::shuffle(cols.begin(), cols.end(), rng());
      cols.resize(1 + rng()() % (t % 17 == 0 ? n : 150));
      for (auto& c : cols) c = int32_t(size_t(c) * size_t(c) / n);
      std::sort(cols.begin(), cols.end());
      cols.erase(std::unique(cols.begin(), cols.end()), cols.end());
      std::vector<uint8_t> hit(cols.size());
      cache.access(cols.data(), cols.size(), hit.data());
      // The model.
      std::vector<uint8_t> in_use(n, 0);
      size_t misses = 0, size = 0;
      for (size_t i = 0; i < cols.size(); ++i) {
        ASSERT_EQ(hit[i], resident[size_t(cols[i])]) << "t " << t;
        in_use[size_t(cols[i])] = 1;
        misses += !resident[size_t(cols[i])];
      }
      for (size_t c = 0; c < n; ++c) size += resident[c];
      size_t admit = std::min(misses, cap);
      if (size + admit > cap) {
        std::vector<int32_t> victims;
        for (size_t c = 0; c < n; ++c) {
          if (resident[c] && !in_use[c]) victims.push_back(int32_t(c));
        }
        std::sort(victims.begin(), victims.end(), [&](int32_t a, int32_t b) {
          if (pol == CachePolicy::kLfu && uses[size_t(a)] != uses[size_t(b)])
            return uses[size_t(a)] < uses[size_t(b)];
          if (last[size_t(a)] != last[size_t(b)]) return last[size_t(a)] < last[size_t(b)];
          return a < b;
        });
        const size_t evict = std::min(size + admit - cap, victims.size());
        for (size_t i = 0; i < evict; ++i) resident[size_t(victims[i])] = 0;
        size -= evict;
        admit = std::min(cap - size, misses);
      }
      for (int32_t c : cols) {
        if (!resident[size_t(c)] && admit > 0) {
          resident[size_t(c)] = 1;
          --admit;
        }
        last[size_t(c)] = t;
        ++uses[size_t(c)];
      }
      for (size_t c = 0; c < n; ++c)
        ASSERT_EQ(cache.contains(c), resident[c] != 0) << "t " << t << " column " << c;
    }
  }
}

}  // namespace
}  // namespace dip
