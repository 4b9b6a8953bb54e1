// Element-wise and row-wise operations of the forward pass, with ggml's numerics (sums of
// squares and softmax denominators accumulated in double).
#pragma once
#include <cstddef>
#include <cstdint>

namespace dip {

// y = x / sqrt(mean(x^2) + eps) * w   (w may be null)
void rms_norm(const float* x, const float* w, float* y, size_t n, float eps);

// Rotates one head of `head_dim` values in place at position `pos`.
struct RopeParams {
  uint32_t n_rot = 0;
  float base = 10000.0f;
  float freq_scale = 1.0f;
  bool neox = false;
  const float* freq_factors = nullptr;  // n_rot / 2 values or null
};
// cos/sin tables for one position: n_rot / 2 entries each.
void rope_cache(const RopeParams& p, int32_t pos, float* cos_out, float* sin_out);
void rope_apply(const RopeParams& p, const float* cos_t, const float* sin_t, float* head);

// exp(x) computed as llama.cpp's CPU backend does in its vectorized softmax and SiLU (a
// degree-5 polynomial after range reduction, from Arm's optimized routines; <= 2 ulp from
// expf). Using the same approximation keeps our logits within float noise of llama.cpp's.
float expf_ggml(float x);

// h[i] = silu(g[i]) * u[i]
void swiglu(const float* g, const float* u, float* h, size_t n);

// In-place softmax over n values; returns nothing. Max-subtracted, double denominators.
void softmax(float* x, size_t n);

// log softmax of logits at index `target`, in double.
double log_softmax_at(const float* logits, size_t n, size_t target);

}  // namespace dip
