// Scalar half-precision conversions (IEEE fp16 and bfloat16), bit-exact with ggml's.
#pragma once
#include <cstdint>
#include <cstring>

namespace dip {

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// fp16 -> fp32 (exact).
float fp16_to_f32(uint16_t h);
// fp32 -> fp16 with round-to-nearest-even, as the F16C instruction does.
uint16_t f32_to_fp16(float f);

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }
// fp32 -> bf16 with round-to-nearest-even; NaN stays NaN (ggml's rule).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_to_bits(f);
  if ((u & 0x7fffffff) > 0x7f800000) return uint16_t((u >> 16) | 64);  // quiet NaN
  return uint16_t((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

// Rounds through fp16 / bf16 and back: how llama.cpp's CPU backend sees an activation that
// is multiplied with an F16 / BF16 weight.
inline float round_fp16(float f) { return fp16_to_f32(f32_to_fp16(f)); }
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

}  // namespace dip

namespace dip {
// 65536-entry fp16 -> fp32 table for hot scalar loops (KV cache reads).
const float* fp16_table();
}  // namespace dip
