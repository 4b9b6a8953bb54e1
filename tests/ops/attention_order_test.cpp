// The llama.cpp-order attention products: the Highway versions bit-identical to the scalar
// references (on targets with FMA, which every x86-64-v3 and Arm machine we run has), and the
// references themselves close to a double-precision sum (they reorder, they do not lose).
#include "ops/attention_order.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "test_random.h"
#include "util/fp.h"

namespace dip {
namespace {

std::vector<float> randn_f16(size_t n, float scale = 1.0f) {
  auto v = randn(n, scale);
  for (auto& x : v) x = round_fp16(x);
  return v;
}

// One dot product through the SIMD row kernel: a single row, scale 1 (exact).
float dot_simd(F16DotOrder order, const std::vector<float>& x, const std::vector<float>& y,
               size_t n) {
  float score = NAN;
  f16_score_rows_simd(order, x.data(), n, 0, 1, y.data(), n, 1.0f, &score);
  return score;
}

TEST(AttentionOrder, DotSimdIsBitIdenticalToReference) {
  for (F16DotOrder order : {F16DotOrder::kVecDot, F16DotOrder::kTinyBlas}) {
    for (size_t n : {16u, 32u, 48u, 64u, 80u, 128u, 192u, 256u, 304u}) {
      if (order == F16DotOrder::kVecDot || n % 16 == 0) {
        const auto x = randn_f16(n), y = randn_f16(n);
        const float ref = f16_dot_ref(order, x.data(), y.data(), n);
        ASSERT_EQ(ref, dot_simd(order, x, y, n)) << "n=" << n;
        double exact = 0;
        for (size_t i = 0; i < n; ++i) exact += double(x[i]) * y[i];
        ASSERT_NEAR(ref, exact, 1e-5 * (1 + std::fabs(exact))) << "n=" << n;
      }
    }
  }
  for (size_t n : {5u, 33u, 77u, 100u}) {  // past the last step of 64: the double tail
    const auto x = randn_f16(n), y = randn_f16(n);
    ASSERT_EQ(f16_dot_ref(F16DotOrder::kVecDot, x.data(), y.data(), n),
              dot_simd(F16DotOrder::kVecDot, x, y, n))
        << "n=" << n;
  }
}

std::vector<uint16_t> to_f16(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_fp16(v[i]);
  return h;
}

// The row variants (eight rows at a time, then one at a time), reading the F16 cache in place
// or rows decoded to floats: rows of a strided cache (rows of several heads, this head's at an
// offset), the same bits as the float references.
TEST(AttentionOrder, F16CacheVariantsAreBitIdenticalToReference) {
  const size_t stride = 3 * 128 + 8;
  for (F16DotOrder order : {F16DotOrder::kVecDot, F16DotOrder::kTinyBlas}) {
    for (size_t hd : {64u, 80u, 128u}) {
      for (auto [j0, j1] : {std::pair<size_t, size_t>{0, 1}, {0, 37}, {5, 130}}) {
        const auto cache = randn_f16(j1 * stride), q = randn_f16(hd);
        const auto cache16 = to_f16(cache);
        const size_t off = 128 + 8;  // the head's columns within a row
        std::vector<float> scores(j1, NAN), scores32(j1, NAN);
        f16_score_rows_simd(order, cache16.data() + off, stride, j0, j1, q.data(), hd, 0.125f,
                            scores.data());
        f16_score_rows_simd(order, cache.data() + off, stride, j0, j1, q.data(), hd, 0.125f,
                            scores32.data());
        std::vector<float> p(j1, 0.0f);
        for (size_t j = j0; j < j1; ++j) {
          ASSERT_EQ(scores[j], f16_dot_ref(order, &cache[j * stride + off], q.data(), hd) * 0.125f)
              << "hd=" << hd << " j=" << j;
          ASSERT_EQ(scores32[j], scores[j]) << "float rows, hd=" << hd << " j=" << j;
          p[j] = round_fp16(std::fabs(scores[j]) / float(j1 - j0));
        }
        std::vector<float> ref(hd), got(hd, NAN), scratch(64 * hd, NAN);
        f16_weighted_sum_ref(order, p.data(), cache.data() + off, stride, j0, j1, hd, ref.data());
        f16_weighted_sum_simd(order, p.data(), cache16.data() + off, stride, j0, j1, hd,
                              scratch.data(), got.data());
        for (size_t d = 0; d < hd; ++d) ASSERT_EQ(ref[d], got[d]) << "hd=" << hd << " d=" << d;
      }
    }
  }
}

// The two orders are different sums: on random inputs they part in the last bits somewhere
// (so the dispatch between them is not a no-op that a test could not see).
TEST(AttentionOrder, TheTwoOrdersDiffer) {
  int differ = 0;
  for (int trial = 0; trial < 50; ++trial) {
    const auto x = randn_f16(128), y = randn_f16(128);
    differ += f16_dot_ref(F16DotOrder::kVecDot, x.data(), y.data(), 128) !=
              f16_dot_ref(F16DotOrder::kTinyBlas, x.data(), y.data(), 128);
  }
  EXPECT_GT(differ, 0);
}

TEST(AttentionOrder, WeightedSumSimdIsBitIdenticalToReference) {
  for (F16DotOrder order : {F16DotOrder::kVecDot, F16DotOrder::kTinyBlas}) {
    for (size_t hd : {8u, 32u, 40u, 64u, 128u}) {
      for (auto [j0, j1] :
           {std::pair<size_t, size_t>{0, 1}, {0, 17}, {3, 64}, {0, 130}, {70, 300}}) {
        std::vector<float> p(j1, 0.0f);
        for (size_t j = j0; j < j1; ++j) p[j] = round_fp16(std::fabs(randn(1)[0]) / float(j1 - j0));
        const auto v = randn_f16(j1 * hd);
        std::vector<float> ref(hd), got(hd, NAN), scratch(64 * hd, NAN);
        f16_weighted_sum_ref(order, p.data(), v.data(), hd, j0, j1, hd, ref.data());
        f16_weighted_sum_simd(order, p.data(), v.data(), hd, j0, j1, hd, scratch.data(),
                              got.data());
        for (size_t d = 0; d < hd; ++d) {
          ASSERT_EQ(ref[d], got[d]) << "hd=" << hd << " j=[" << j0 << "," << j1 << ") d=" << d;
          double exact = 0;
          for (size_t j = j0; j < j1; ++j) exact += double(p[j]) * v[j * hd + d];
          ASSERT_NEAR(ref[d], exact, 1e-5 * (1 + std::fabs(exact)));
        }
      }
    }
  }
}

TEST(AttentionOrder, SoftmaxSumChunksAtPositionZero) {
  const auto e = randn(300);
  for (auto [j0, j1] : {std::pair<size_t, size_t>{0, 1}, {0, 16}, {5, 40}, {17, 300}}) {
    double expect = 0;
    for (size_t c = 0; c < j1; c += 16) {
      float lanes[16] = {};
      for (size_t l = 0; l < 16; ++l)
        if (c + l >= j0 && c + l < j1) lanes[l] = e[c + l];
      expect += tree_sum16(lanes);
    }
    EXPECT_EQ(expect, softmax_sum_ggml(e.data(), j0, j1));
    double exact = 0;
    for (size_t j = j0; j < j1; ++j) exact += e[j];
    EXPECT_NEAR(exact, softmax_sum_ggml(e.data(), j0, j1), 1e-4 * (1 + std::fabs(exact)));
  }
}

TEST(AttentionOrder, TreeSumIsGccsReduceAddOrder) {
  float a[16];
  for (int i = 0; i < 16; ++i) a[i] = std::ldexp(1.0f, 3 * i - 20);  // each add rounds differently
  float t8[8], t4[4];
  for (int i = 0; i < 8; ++i) t8[i] = a[i + 8] + a[i];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i + 4] + t8[i];
  EXPECT_EQ((t4[0] + t4[2]) + (t4[1] + t4[3]), tree_sum16(a));
}

TEST(AttentionOrder, PathChoiceFollowsGgml) {
  EXPECT_EQ(F16DotOrder::kVecDot, ggml_f16_order(1, 128, 256));
  EXPECT_EQ(F16DotOrder::kTinyBlas, ggml_f16_order(2, 128, 256));
  EXPECT_EQ(F16DotOrder::kVecDot, ggml_f16_order(8, 40, 256));  // k not a multiple of 16
  EXPECT_EQ(F16DotOrder::kVecDot, ggml_f16_order(8, 256, 6));   // m not a multiple of 4
}

}  // namespace
}  // namespace dip
