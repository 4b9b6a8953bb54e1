// The comparisons against dense streaming of a simulated sweep, on a hand-computed grid.
#include "sim/sweep_summary.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace dip {
namespace {

TEST(SweepSummary, GainAndMemoryReductionByHand) {
  // DRAM sizes 10, 20, 30; dense streaming 1, 2, 4 tokens/s. dip "a" (+1% ppl): 1.5, 3, 5;
  // dip "b" (+5%): 2, 4, 8; glu (+0%): 0.5 everywhere.
  std::vector<SimPoint> pts;
  const double d[3] = {10, 20, 30}, dense[3] = {1, 2, 4}, a[3] = {1.5, 3, 5}, b[3] = {2, 4, 8};
  for (int k = 0; k < 3; ++k) {
    pts.push_back({"dense", "dense", 0, d[k], 7, dense[k]});
    pts.push_back({"dip", "a", 1, d[k], 7, a[k]});
    pts.push_back({"dip", "b", 5, d[k], 7, b[k]});
    pts.push_back({"glu", "g", 0, d[k], 7, 0.5});
  }
  const std::vector<Comparison> c = compare_to_dense(pts, {2, 10});
  ASSERT_EQ(c.size(), 2u * 2u * 3u);  // (dip, glu) x 2 budgets x 3 sizes
  // dip within 2%: "a".
  EXPECT_EQ(c[0].best_label, "a");
  EXPECT_DOUBLE_EQ(c[0].gain, 1.5);
  EXPECT_TRUE(c[0].reduction_is_lower_bound);  // already 1.5 >= 1 at the smallest size
  EXPECT_DOUBLE_EQ(c[0].memory_reduction, 0.0);
  // Dense at 20 MB: 2 t/s; "a" reaches 2 between 10 (1.5) and 20 (3): at 13.33.
  EXPECT_DOUBLE_EQ(c[1].equal_tps_dram, 10 + 10.0 / 3);
  EXPECT_NEAR(c[1].memory_reduction, 1.0 / 3, 1e-12);
  EXPECT_FALSE(c[1].reduction_is_lower_bound);
  // Dense at 30: 4 t/s, reached halfway between 20 (3) and 30 (5).
  EXPECT_DOUBLE_EQ(c[2].equal_tps_dram, 25);
  EXPECT_DOUBLE_EQ(c[2].gain, 1.25);
  // Within 10%: "b"; dense at 20 (2 t/s) is reached at the smallest size already; at 30 (4 t/s)
  // at 20.
  EXPECT_EQ(c[4].best_label, "b");
  EXPECT_DOUBLE_EQ(c[4].gain, 2.0);
  EXPECT_TRUE(c[4].reduction_is_lower_bound);
  EXPECT_DOUBLE_EQ(c[4].memory_reduction, 0.5);
  EXPECT_DOUBLE_EQ(c[5].equal_tps_dram, 20);
  // glu never reaches dense: gain 0.5, no DRAM size.
  EXPECT_EQ(c[6].method, "glu");
  EXPECT_DOUBLE_EQ(c[6].gain, 0.5);
  EXPECT_EQ(c[8].equal_tps_dram, 0.0);
  // Nothing within a budget of 0.5%: no best point.
  const std::vector<Comparison> strict = compare_to_dense(pts, {0.5});
  EXPECT_EQ(strict[0].method_tps, 0.0);
  EXPECT_TRUE(strict[0].best_label.empty());
  // A DRAM size without a dense point is an error.
  pts.push_back({"dip", "a", 1, 40, 7, 9});
  EXPECT_THROW(compare_to_dense(pts, {2}), Error);
}

}  // namespace
}  // namespace dip
