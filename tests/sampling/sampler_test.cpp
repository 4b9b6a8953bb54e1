#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "util/error.h"

namespace dip {
namespace {

std::vector<float> random_logits(size_t n) {
  static std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> d(0, 2);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(Sampler, GreedyIsArgmax) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  for (int i = 0; i < 50; ++i) {
    const auto l = random_logits(1000);
    EXPECT_EQ(s.sample(l.data(), l.size()), std::max_element(l.begin(), l.end()) - l.begin());
  }
}

TEST(Sampler, TopKOneIsArgmaxAndSeedsRepeat) {
  SamplingParams p;
  p.top_k = 1;
  Sampler s(p);
  const auto l = random_logits(500);
  EXPECT_EQ(s.sample(l.data(), l.size()), std::max_element(l.begin(), l.end()) - l.begin());
  SamplingParams q;
  q.seed = 42;
  q.top_k = 0;
  q.top_p = 1;
  q.min_p = 0;
  Sampler a(q), b(q);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(a.sample(l.data(), l.size()), b.sample(l.data(), l.size()));
}

TEST(Sampler, TopPAndMinPKeepOnlyLikelyTokens) {
  std::vector<float> l = {5.0f, 4.9f, 0.0f, -1.0f, -2.0f};
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 0.9f;
  p.min_p = 0;
  p.temperature = 1;
  Sampler s(p);
  std::map<int, int> seen;
  for (int i = 0; i < 2000; ++i) seen[s.sample(l.data(), l.size())]++;
  EXPECT_EQ(seen.count(2) + seen.count(3) + seen.count(4), 0u);
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
  SamplingParams m;
  m.top_k = 0;
  m.top_p = 1;
  m.min_p = 0.5f;
  Sampler s2(m);
  for (int i = 0; i < 500; ++i) EXPECT_LE(s2.sample(l.data(), l.size()), 1);
}

TEST(Sampler, RepetitionPenaltyAvoidsRecentTokens) {
  std::vector<float> l = {3.0f, 2.9f, 1.0f};
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  s.accept(0);
  EXPECT_EQ(s.sample(l.data(), l.size()), 1);
}

TEST(Sampler, BadParameters) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_THROW(validate(p), Error);
  p = {};
  p.top_p = 0;
  EXPECT_THROW(validate(p), Error);
  p = {};
  p.min_p = 2;
  EXPECT_THROW(validate(p), Error);
  p = {};
  p.repeat_penalty = 0;
  EXPECT_THROW(validate(p), Error);
}

}  // namespace
}  // namespace dip
