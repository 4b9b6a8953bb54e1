#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace dip {

void validate(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    fail("--temp must be >= 0 (got {})", p.temperature);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) fail("--top-p must be in (0, 1] (got {})", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) fail("--min-p must be in [0, 1] (got {})", p.min_p);
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) {
    fail("--repeat-penalty must be > 0 (got {})", p.repeat_penalty);
  }
  if (p.repeat_last_n < 0) fail("--repeat-last-n must be >= 0 (got {})", p.repeat_last_n);
}

uint64_t random_seed() {
  std::random_device rd;
  return (uint64_t(rd()) << 32) | rd();
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) { validate(p); }

void Sampler::accept(int32_t token) {
  if (p_.repeat_last_n == 0) return;
  recent_.push_back(token);
  while (recent_.size() > size_t(p_.repeat_last_n)) recent_.pop_front();
}

int32_t Sampler::sample(const float* logits, size_t n) {
  cand_.resize(n);
  for (size_t i = 0; i < n; ++i) cand_[i] = {logits[i], int32_t(i)};
  if (p_.repeat_penalty != 1.0f) {
    std::vector<int32_t> seen(recent_.begin(), recent_.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t t : seen) {
      if (t < 0 || size_t(t) >= n) continue;
      float& l = cand_[t].first;
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (p_.temperature <= 0.0f) {
    return std::min_element(cand_.begin(), cand_.end(), by_logit)->second;
  }
  size_t k = n;
  if (p_.top_k > 0) k = std::min(n, size_t(p_.top_k));
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), by_logit);
  cand_.resize(k);
  // Probabilities of the survivors (before temperature, as llama.cpp's top-p/min-p see them).
  auto probs = [&](float temp) {
    std::vector<double> pr(cand_.size());
    const double mx = cand_[0].first;
    double sum = 0;
    for (size_t i = 0; i < cand_.size(); ++i) sum += pr[i] = std::exp((cand_[i].first - mx) / temp);
    for (auto& x : pr) x /= sum;
    return pr;
  };
  if (p_.top_p < 1.0f) {
    const auto pr = probs(1.0f);
    double cum = 0;
    size_t keep = cand_.size();
    for (size_t i = 0; i < pr.size(); ++i) {
      cum += pr[i];
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand_.resize(keep);
  }
  if (p_.min_p > 0.0f) {
    const float thr = cand_[0].first + std::log(p_.min_p);
    size_t keep = 1;
    while (keep < cand_.size() && cand_[keep].first >= thr) keep++;
    cand_.resize(keep);
  }
  const auto pr = probs(p_.temperature);
  std::discrete_distribution<size_t> dist(pr.begin(), pr.end());
  return cand_[dist(rng_)].second;
}

}  // namespace dip
