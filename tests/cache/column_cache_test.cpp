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

}  // namespace
}  // namespace dip
