#include "util/fp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace dip {
namespace {

TEST(Fp16, RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_fp16(f), h) << h;
  }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t hw_to_fp16(float f) { return uint16_t(_cvtss_sh(f, 0)); }

TEST(Fp16, MatchesF16cRounding) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C";
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 2000000; ++i) {
    const float f = bits_to_f32(bits(rng));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_fp16(f), hw_to_fp16(f)) << f;
  }
}
#endif

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f818000)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808001)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_EQ(bf16_to_f32(0x4049), bits_to_f32(0x40490000));
}

}  // namespace
}  // namespace dip
