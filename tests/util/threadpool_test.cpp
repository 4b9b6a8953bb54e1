#include "util/threadpool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace dip {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (size_t n : {0u, 1u, 7u, 64u, 1000u, 4097u}) {
      for (size_t grain : {1u, 16u, 100u}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallel_for(n, grain, [&](size_t b, size_t e) {
          for (size_t i = b; i < e; ++i) hits[i]++;
        });
        for (size_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[i].load(), 1) << threads << " " << n << " " << grain;
      }
    }
  }
}

TEST(ThreadPool, ManyShortRuns) {
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  for (int r = 0; r < 20000; ++r) pool.run([&](int t, int) { sum += t + 1; });
  EXPECT_EQ(sum.load(), 20000L * 3);
}

// More threads than cores: every index of run() and every element of parallel_for is done
// exactly once, whichever threads are awake, over many back-to-back loops.
TEST(ThreadPool, MoreThreadsThanCoresDoEveryIndexOnce) {
  EXPECT_GE(available_cores(), 1);
  const int threads = 4 * available_cores() + 3;
  ThreadPool pool(threads);
  for (int r = 0; r < 2000; ++r) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(threads));
    pool.run([&](int t, int nt) {
      ASSERT_EQ(nt, threads);
      hits[size_t(t)]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    std::vector<std::atomic<int>> cells(333);
    pool.parallel_for(cells.size(), 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) cells[i]++;
    });
    for (auto& c : cells) ASSERT_EQ(c.load(), 1);
  }
}

}  // namespace
}  // namespace dip
