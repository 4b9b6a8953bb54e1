#include "util/fp.h"

#include <cmath>
#include <vector>

namespace dip {

float fp16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0) return bits_to_f32(sign);
    // subnormal: normalize
    int e = -1;
    do {
      e++;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    mant &= 0x3ff;
    return bits_to_f32(sign | uint32_t(127 - 15 - e) << 23 | mant << 13);
  }
  if (exp == 31) return bits_to_f32(sign | 0x7f800000 | mant << 13);
  return bits_to_f32(sign | (exp + 127 - 15) << 23 | mant << 13);
}

uint16_t f32_to_fp16(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const uint32_t abs = u & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;   // NaN
  if (abs >= 0x477ff000) return sign | 0x7c00;  // overflow -> inf (after rounding)
  if (abs < 0x38800000) {                       // subnormal or zero in fp16
    if (abs < 0x33000000) return sign;          // rounds to zero
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // 14 + (113 - e) - ... see below
    // value = m * 2^(e-150); fp16 subnormal unit = 2^-24 -> q = m >> (126 - e)
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return sign | uint16_t(q);
  }
  // normal
  uint32_t r = abs + 0xfff + ((abs >> 13) & 1);  // round to nearest even at bit 13
  r -= (127 - 15) << 23;
  return sign | uint16_t(r >> 13);
}

}  // namespace dip

namespace dip {
const float* fp16_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (uint32_t i = 0; i < 65536; ++i) v[i] = fp16_to_f32(uint16_t(i));
    return v;
  }();
  return t.data();
}
}  // namespace dip
