// Fresh random inputs for kernel tests (a new seed every run; failures print what they used).
#pragma once
#include <random>
#include <vector>

#include "ops/tensor_types.h"

namespace dip {

inline std::mt19937& rng() {
  static std::mt19937 r(std::random_device{}());
  return r;
}

inline std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng());
  return v;
}

inline constexpr TensorType kAllTypes[] = {TensorType::F32, TensorType::F16, TensorType::BF16,
                                           TensorType::Q8_0, TensorType::Q4_0};

}  // namespace dip
