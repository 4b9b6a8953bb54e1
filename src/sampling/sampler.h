// Token sampling: repetition penalty, top-k, top-p, min-p, temperature, seeded draw; greedy
// when the temperature is 0. The order follows llama.cpp's default sampler chain.
#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace dip {

struct SamplingParams {
  float temperature = 0.8f;
  int32_t top_k = 40;   // <= 0: off
  float top_p = 0.95f;  // >= 1: off
  float min_p = 0.05f;  // <= 0: off
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  uint64_t seed = 0xD1D1D1D1ull;
};

// A seed drawn from the system's entropy (runs that give no --seed differ, as llama.cpp's).
uint64_t random_seed();

// Validates the parameters; fails with the flag name and the bad value.
void validate(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  int32_t sample(const float* logits, size_t n_vocab);
  void accept(int32_t token);  // record for the repetition penalty

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<std::pair<float, int32_t>> cand_;
};

}  // namespace dip
