#include "ops/elementwise.h"

#include <cmath>

namespace dip {

void rms_norm(const float* x, const float* w, float* y, size_t n, float eps) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
  if (w) {
    for (size_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
  } else {
    for (size_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void rope_cache(const RopeParams& p, int32_t pos, float* c, float* s) {
  // Same recurrence as ggml: theta_i = pos * base^(-2i/n_rot), computed by repeated products.
  const float theta_scale = powf(p.base, -2.0f / float(p.n_rot));  // float pow, as ggml
  float theta = float(pos);
  for (uint32_t i = 0; i < p.n_rot / 2; ++i) {
    const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
    const float t = p.freq_scale * (theta / ff);
    c[i] = std::cos(t);
    s[i] = std::sin(t);
    theta *= theta_scale;
  }
}

void rope_apply(const RopeParams& p, const float* c, const float* s, float* x) {
  const uint32_t half = p.n_rot / 2;
  for (uint32_t i = 0; i < half; ++i) {
    const uint32_t a = p.neox ? i : 2 * i;
    const uint32_t b = p.neox ? i + half : 2 * i + 1;
    const float x0 = x[a], x1 = x[b];
    // ggml's CPU build contracts these into FMAs, the first product of each fused (measured
    // against llama.cpp's rotated q on all 224 pairs of a test: the other fusion, or none,
    // matched 150-200 of them); the same here makes q and k bit-identical to llama.cpp's.
    x[a] = std::fma(x0, c[i], -(x1 * s[i]));
    x[b] = std::fma(x0, s[i], x1 * c[i]);
  }
}

float expf_ggml(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;  // round(x / ln 2)
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  if (std::fabs(n) > 192.0f) return n > 0 ? INFINITY : 0.0f;
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  return std::ldexp(j, int(n));
}

void swiglu(const float* g, const float* u, float* h, size_t n) {
  for (size_t i = 0; i < n; ++i) h[i] = g[i] / (1.0f + expf_ggml(-g[i])) * u[i];
}

void softmax(float* x, size_t n) {
  float mx = -INFINITY;
  for (size_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float e = x[i] == -INFINITY ? 0.0f : std::exp(x[i] - mx);
    x[i] = e;
    sum += e;
  }
  const float inv = float(1.0 / sum);
  for (size_t i = 0; i < n; ++i) x[i] *= inv;
}

double log_softmax_at(const float* logits, size_t n, size_t target) {
  float mx = logits[0];
  for (size_t i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(double(logits[i] - mx));
  return double(logits[target] - mx) - std::log(sum);
}

}  // namespace dip
