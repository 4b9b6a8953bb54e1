// The masker registry: every method is found by its name and its id, an unknown name lists the
// known ones, and each method's split of a density reaches that density.
#include "sparsity/masker.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "util/error.h"

namespace dip {
namespace {

TEST(Masker, EveryMethodByNameAndId) {
  const std::string names = masker_names();
  EXPECT_EQ(names, "dense, dip, dip-ca, glu, cats, teal");
  for (const char* n : {"dense", "dip", "dip-ca", "glu", "cats", "teal"}) {
    const Masker& m = masker_named(n);
    EXPECT_STREQ(m.name(), n);
    EXPECT_EQ(&masker_for(m.id()), &m);
    EXPECT_EQ(parse_method(n), m.id());
    EXPECT_STREQ(method_name(m.id()), n);
  }
  try {
    masker_named("sparse");
    ADD_FAILURE() << "no error for an unknown method";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown method 'sparse' (" + names + ")"),
              std::string::npos)
        << e.what();
  }
}

TEST(Masker, SplitsReachTheirDensityAndRefuseLess) {
  std::mt19937 gen(std::random_device{}());
  std::uniform_real_distribution<double> u(0.05, 1.0);
  for (const char* n : {"dip", "dip-ca", "glu", "cats", "teal"}) {
    const Masker& m = masker_named(n);
    for (int i = 0; i < 200; ++i) {
      const double d = u(gen);
      if (d < m.min_density()) {
        EXPECT_THROW(m.split(d), Error) << n << " " << d;
        continue;
      }
      const LayerKeep k = m.split(d);
      EXPECT_GT(k.up, 0.0);
      EXPECT_LE(k.up, 1.0);
      EXPECT_GT(k.down, 0.0);
      EXPECT_LE(k.down, 1.0);
      if (!m.masks_inputs()) {
        EXPECT_EQ(k.up, 1.0) << n;
      }
      EXPECT_NEAR(m.density_of(k), d, 1e-4) << n << " at " << d;
    }
  }
  EXPECT_EQ(masker_named("dense").density_of(LayerKeep{0.1, 0.1}), 1.0);
  EXPECT_TRUE(masker_named("dip-ca").cache_aware());
  EXPECT_FALSE(masker_named("dip").cache_aware());
  EXPECT_FALSE(masker_named("glu").runs_from_flash());
  EXPECT_TRUE(masker_named("teal").runs_from_flash());
}

}  // namespace
}  // namespace dip
