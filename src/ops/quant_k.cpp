#include "ops/quant_k.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "util/error.h"
#include "util/fp.h"

namespace dip {
namespace {

void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
  std::memset(q, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      q[j] = sc[j];
      q[j + 4] = m[j];
    } else {
      q[j + 4] = uint8_t((sc[j] & 0x0f) | ((m[j] & 0x0f) << 4));
      q[j - 4] |= uint8_t((sc[j] >> 4) << 6);
      q[j] |= uint8_t((m[j] >> 4) << 6);
    }
  }
}

// A Q4_K/Q5_K super-block unpacked: the levels in element order (0..15 or 0..31), the 8 scales
// and mins, and the two F16 factors as floats.
struct UnpackedQ45K {
  uint8_t q[kQK_K], sc[8], m[8];
  float d, dmin;
};

template <bool kQ5, class Block>
void unpack_q45k(const Block& b, UnpackedQ45K& u) {
  uint8_t* q = u.q;
  u.d = fp16_to_f32(b.d);
  u.dmin = fp16_to_f32(b.dmin);
  for (int j = 0; j < 8; ++j) scale_min_k4(j, b.scales, u.sc[j], u.m[j]);
  for (int c = 0; c < 4; ++c) {  // 64 elements per chunk: low nibbles, then high nibbles
    const uint8_t* qs = b.qs + 32 * c;
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = qs[l] & 0x0f;
      q[64 * c + 32 + l] = qs[l] >> 4;
    }
    if constexpr (kQ5) {
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] |= uint8_t(((b.qh[l] >> (2 * c)) & 1) << 4);
        q[64 * c + 32 + l] |= uint8_t(((b.qh[l] >> (2 * c + 1)) & 1) << 4);
      }
    }
  }
}

// Super-block i of a Q4_K or Q5_K row.
void unpack_q45k(TensorType t, const void* row, size_t i, UnpackedQ45K& u) {
  if (t == TensorType::Q4_K) {
    unpack_q45k<false>(static_cast<const BlockQ4K*>(row)[i], u);
  } else if (t == TensorType::Q5_K) {
    unpack_q45k<true>(static_cast<const BlockQ5K*>(row)[i], u);
  } else {
    fail("internal: {} is not a K-quant weight type", ggml_type_name(uint32_t(t)));
  }
}

// The signed levels (q - 32, in [-32, 31]) of a Q6_K super-block in element order.
void unpack_q6k(const BlockQ6K& b, int8_t* q) {
  for (int h = 0; h < 2; ++h) {  // halves of 128
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* y = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      y[l] = int8_t(((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
      y[l + 32] = int8_t(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
      y[l + 64] = int8_t(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      y[l + 96] = int8_t(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

int nearest(float v) { return int(std::nearbyint(v)); }

// Per sub-block of `len` elements of x: the scale that spreads its range over levels 0..nmax
// and its min (min <= 0, stored as -min); returns the largest scale and min of the super-block.
struct RangeMax {
  float scale = 0, min = 0;
};
RangeMax range_fit(const float* x, int n_sub, int len, int nmax, float* scale, float* minv) {
  RangeMax most;
  for (int j = 0; j < n_sub; ++j) {
    const float* s = x + len * j;
    float lo = 0.0f, hi = s[0];
    for (int l = 0; l < len; ++l) {
      lo = std::min(lo, s[l]);
      hi = std::max(hi, s[l]);
    }
    scale[j] = (hi - lo) / nmax;
    minv[j] = -lo;
    most.scale = std::max(most.scale, scale[j]);
    most.min = std::max(most.min, minv[j]);
  }
  return most;
}

// Q4_K / Q5_K weights: levels 0..nmax with a per-sub-block scale and min (min <= 0 stored as -min).
template <bool kQ5, class Block>
void quantize_q45k(const float* x, Block& b) {
  constexpr int nmax = kQ5 ? 31 : 15;
  float scale[8], minv[8];
  const auto [max_scale, max_min] = range_fit(x, 8, 32, nmax, scale, minv);
  uint8_t ls[8], lm[8];
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < 8; ++j) {
    // Scales rounded up: the sub-block's range then fits its levels (no clipping at the top).
    ls[j] = uint8_t(std::min(63, int(std::ceil(inv_scale * scale[j]))));
    lm[j] = uint8_t(std::min(63, nearest(inv_min * minv[j])));
  }
  pack_scale_min_k4(ls, lm, b.scales);
  b.d = f32_to_fp16(max_scale / 63.0f);
  b.dmin = f32_to_fp16(max_min / 63.0f);
  const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
  uint8_t q[kQK_K];
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scale_min_k4(j, b.scales, sc, m);
    const float dl = d * sc, ml = dmin * m;
    for (int l = 0; l < 32; ++l) {
      const int v = dl != 0.0f ? nearest((x[32 * j + l] + ml) / dl) : 0;
      q[32 * j + l] = uint8_t(std::clamp(v, 0, nmax));
    }
  }
  if constexpr (kQ5) std::memset(b.qh, 0, sizeof(b.qh));
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
      b.qs[32 * c + l] = uint8_t((lo & 0x0f) | ((hi & 0x0f) << 4));
      if constexpr (kQ5) {
        b.qh[l] |= uint8_t(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

// Per 16 elements of x the signed scale that maps the element of largest magnitude to level
// -bottom (Q3_K: 4, Q6_K: 32); returns the scale of largest magnitude, with its sign.
float signed_scales16(const float* x, float bottom, float* scale) {
  float max_scale = 0, amax_scale = 0;
  for (int j = 0; j < 16; ++j) {
    float amax = 0, max = 0;
    for (int l = 0; l < 16; ++l) {
      const float v = x[16 * j + l];
      if (std::fabs(v) > amax) {
        amax = std::fabs(v);
        max = v;
      }
    }
    scale[j] = -max / bottom;
    if (std::fabs(scale[j]) > amax_scale) {
      amax_scale = std::fabs(scale[j]);
      max_scale = scale[j];
    }
  }
  return max_scale;
}

// v rounded away from zero, clamped to [lo, hi].
int round_away(float v, int lo, int hi) {
  return std::clamp(int(v < 0 ? std::floor(v) : std::ceil(v)), lo, hi);
}

// Q6_K weights: per 16 elements a signed scale that maps the element of largest magnitude to
// -32; the scales as int8 against the super-block's largest (as ggml's -128 / max).
void quantize_q6k(const float* x, BlockQ6K& b) {
  float scale[16];
  const float max_scale = signed_scales16(x, 32.0f, scale);
  const float iscale = max_scale != 0.0f ? -128.0f / max_scale : 0.0f;
  // Scales rounded away from zero: the sub-block's largest magnitude then stays within -32.
  for (int j = 0; j < 16; ++j) b.scales[j] = int8_t(round_away(iscale * scale[j], -128, 127));
  b.d = f32_to_fp16(iscale != 0.0f ? 1.0f / iscale : 0.0f);
  const float d = fp16_to_f32(b.d);
  int8_t q[kQK_K];  // level + 32, in [0, 63]
  for (int j = 0; j < 16; ++j) {
    const float dl = d * b.scales[j];
    for (int l = 0; l < 16; ++l) {
      const int v = dl != 0.0f ? nearest(x[16 * j + l] / dl) : 0;
      q[16 * j + l] = int8_t(std::clamp(v, -32, 31) + 32);
    }
  }
  for (int h = 0; h < 2; ++h) {
    uint8_t* ql = b.ql + 64 * h;
    uint8_t* qh = b.qh + 32 * h;
    const int8_t* L = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = uint8_t((L[l] & 0x0f) | ((L[l + 64] & 0x0f) << 4));
      ql[l + 32] = uint8_t((L[l + 32] & 0x0f) | ((L[l + 96] & 0x0f) << 4));
      qh[l] = uint8_t((L[l] >> 4) | ((L[l + 32] >> 4) << 2) | ((L[l + 64] >> 4) << 4) |
                      ((L[l + 96] >> 4) << 6));
    }
  }
}

// A Q2_K or Q3_K super-block unpacked: the levels in element order (Q2_K 0..3, Q3_K -4..3), the
// sixteen sub-block scales (Q2_K 0..15, Q3_K -32..31) and mins (Q2_K 0..15, Q3_K none), and the
// F16 factors as floats.
struct UnpackedQ23K {
  int8_t q[kQK_K], sc[16];
  uint8_t m[16];
  float d, dmin;
};

// Element 128 h + 32 k + l of Q2_K / Q3_K is in bits 2k of qs[32 h + l].
int low2(const uint8_t* qs, size_t e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
}

void unpack_q2k(const BlockQ2K& b, UnpackedQ23K& u) {
  u.d = fp16_to_f32(b.d);
  u.dmin = fp16_to_f32(b.dmin);
  for (int j = 0; j < 16; ++j) {
    u.sc[j] = int8_t(b.scales[j] & 0x0f);
    u.m[j] = uint8_t(b.scales[j] >> 4);
  }
  for (size_t e = 0; e < kQK_K; ++e) u.q[e] = int8_t(low2(b.qs, e));
}

void unpack_q3k(const BlockQ3K& b, UnpackedQ23K& u) {
  u.d = fp16_to_f32(b.d);
  u.dmin = 0.0f;
  for (int j = 0; j < 16; ++j) {
    u.sc[j] = int8_t(q3k_scale(b.scales, j));
    u.m[j] = 0;
  }
  for (size_t e = 0; e < kQK_K; ++e) {
    const bool high = (b.hmask[e % 32] >> (e / 32)) & 1;
    u.q[e] = int8_t(low2(b.qs, e) - (high ? 0 : 4));
  }
}

void unpack_q23k(TensorType t, const void* row, size_t i, UnpackedQ23K& u) {
  if (t == TensorType::Q2_K) {
    unpack_q2k(static_cast<const BlockQ2K*>(row)[i], u);
  } else {
    unpack_q3k(static_cast<const BlockQ3K*>(row)[i], u);
  }
}

// Q2_K weights: per 16 elements levels 0..3 with a scale and a min from the range (min <= 0
// stored as -min), both as 4 bits against the super-block's largest.
void quantize_q2k(const float* x, BlockQ2K& b) {
  float scale[16], minv[16];
  const auto [max_scale, max_min] = range_fit(x, 16, 16, 3, scale, minv);
  const float inv_scale = max_scale > 0 ? 15.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 15.0f / max_min : 0.0f;
  b.d = f32_to_fp16(max_scale / 15.0f);
  b.dmin = f32_to_fp16(max_min / 15.0f);
  const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
  std::memset(b.qs, 0, sizeof(b.qs));
  for (int j = 0; j < 16; ++j) {
    // Scales rounded up: the sub-block's range then fits its levels (no clipping at the top).
    const int ls = std::min(15, int(std::ceil(inv_scale * scale[j])));
    const int lm = std::min(15, nearest(inv_min * minv[j]));
    b.scales[j] = uint8_t(ls | (lm << 4));
    const float dl = d * ls, ml = dmin * lm;
    for (int l = 0; l < 16; ++l) {
      const size_t e = 16 * j + l;
      const int v = dl != 0.0f ? std::clamp(nearest((x[e] + ml) / dl), 0, 3) : 0;
      b.qs[32 * (e / 128) + e % 32] |= uint8_t(v << (2 * (e % 128 / 32)));
    }
  }
}

// Q3_K weights: per 16 elements a signed scale that maps the element of largest magnitude to
// level -4; the scales as 6 bits against the super-block's largest (as ggml's -32 / max).
void quantize_q3k(const float* x, BlockQ3K& b) {
  float scale[16];
  const float max_scale = signed_scales16(x, 4.0f, scale);
  const float iscale = max_scale != 0.0f ? -32.0f / max_scale : 0.0f;
  b.d = f32_to_fp16(iscale != 0.0f ? 1.0f / iscale : 0.0f);
  const float d = fp16_to_f32(b.d);
  std::memset(b.scales, 0, sizeof(b.scales));
  std::memset(b.hmask, 0, sizeof(b.hmask));
  std::memset(b.qs, 0, sizeof(b.qs));
  for (int j = 0; j < 16; ++j) {
    // Scales rounded away from zero: the sub-block's largest magnitude then stays within -4.
    const int ls = round_away(iscale * scale[j], -32, 31);
    const int stored = ls + 32;
    if (j < 8) {
      b.scales[j] = uint8_t(stored & 0x0f);
    } else {
      b.scales[j - 8] |= uint8_t((stored & 0x0f) << 4);
    }
    b.scales[8 + j % 4] |= uint8_t((stored >> 4) << (2 * (j / 4)));
    const float dl = d * ls;
    for (int l = 0; l < 16; ++l) {
      const size_t e = 16 * j + l;
      const int q = (dl != 0.0f ? std::clamp(nearest(x[e] / dl), -4, 3) : 0) + 4;  // 0..7
      b.qs[32 * (e / 128) + e % 32] |= uint8_t((q & 3) << (2 * (e % 128 / 32)));
      if (q & 4) b.hmask[e % 32] |= uint8_t(1 << (e / 32));
    }
  }
}

}  // namespace

void dequantize_row_k(TensorType t, const void* src, float* dst, size_t n) {
  const size_t nb = n / kQK_K;
  for (size_t i = 0; i < nb; ++i, dst += kQK_K) {
    if (t == TensorType::Q2_K || t == TensorType::Q3_K) {
      UnpackedQ23K u;
      unpack_q23k(t, src, i, u);
      for (size_t e = 0; e < kQK_K; ++e) {
        const float dl = u.d * u.sc[e / 16], ml = u.dmin * u.m[e / 16];  // ggml's: dl * q - ml
        dst[e] = dl * u.q[e] - ml;
      }
      continue;
    }
    if (t == TensorType::Q6_K) {
      const BlockQ6K& b = static_cast<const BlockQ6K*>(src)[i];
      int8_t q[kQK_K];
      unpack_q6k(b, q);
      const float d = fp16_to_f32(b.d);
      for (size_t e = 0; e < kQK_K; ++e) dst[e] = d * b.scales[e / 16] * q[e];
      continue;
    }
    UnpackedQ45K u;
    unpack_q45k(t, src, i, u);
    for (int j = 0; j < 8; ++j) {
      const float dl = u.d * u.sc[j], ml = u.dmin * u.m[j];  // ggml's order: d1 * q - m1
      for (int l = 0; l < 32; ++l) dst[32 * j + l] = dl * u.q[32 * j + l] - ml;
    }
  }
}

void quantize_row_k(TensorType t, const float* x, void* dst, size_t n) {
  const size_t nb = n / kQK_K;
  for (size_t i = 0; i < nb; ++i, x += kQK_K) {
    switch (t) {
      case TensorType::Q2_K:
        quantize_q2k(x, static_cast<BlockQ2K*>(dst)[i]);
        break;
      case TensorType::Q3_K:
        quantize_q3k(x, static_cast<BlockQ3K*>(dst)[i]);
        break;
      case TensorType::Q4_K:
        quantize_q45k<false>(x, static_cast<BlockQ4K*>(dst)[i]);
        break;
      case TensorType::Q5_K:
        quantize_q45k<true>(x, static_cast<BlockQ5K*>(dst)[i]);
        break;
      case TensorType::Q6_K:
        quantize_q6k(x, static_cast<BlockQ6K*>(dst)[i]);
        break;
      default:
        fail("internal: {} is not a K-quant weight type", ggml_type_name(uint32_t(t)));
    }
  }
}

void quantize_row_q8_K(const float* x, BlockQ8K* y, size_t n) {
  for (size_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    float amax = 0, max = 0;
    for (size_t j = 0; j < kQK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    const float iscale = -127.0f / max;
    for (size_t j = 0; j < kQK_K; ++j) y[i].qs[j] = int8_t(std::min(127, nearest(iscale * x[j])));
    q8k_block_sums(y[i]);
    y[i].d = 1.0f / iscale;
  }
}

float dot_k(TensorType t, const void* w, const BlockQ8K* act, size_t n) {
  const size_t nb = n / kQK_K;
  float sum = 0.0f;
  for (size_t i = 0; i < nb; ++i) {
    const BlockQ8K& a = act[i];
    if (t == TensorType::Q2_K || t == TensorType::Q3_K) {
      UnpackedQ23K u;
      unpack_q23k(t, w, i, u);
      int32_t isum = 0, msum = 0;
      for (int j = 0; j < 16; ++j) {
        int32_t s = 0;
        for (int l = 0; l < 16; ++l) s += int32_t(u.q[16 * j + l]) * a.qs[16 * j + l];
        isum += u.sc[j] * s;
        msum += u.m[j] * a.bsums[j];
      }
      sum = t == TensorType::Q2_K
                ? std::fma(u.d * a.d, float(isum), std::fma(-(u.dmin * a.d), float(msum), sum))
                : std::fma(u.d * a.d, float(isum), sum);  // Q3_K: no mins
      continue;
    }
    if (t == TensorType::Q6_K) {
      const BlockQ6K& b = static_cast<const BlockQ6K*>(w)[i];
      int8_t q[kQK_K];
      unpack_q6k(b, q);
      int32_t isum = 0;
      for (int j = 0; j < 16; ++j) {
        int32_t s = 0;
        for (int l = 0; l < 16; ++l) s += int32_t(q[16 * j + l]) * a.qs[16 * j + l];
        isum += b.scales[j] * s;
      }
      sum = std::fma(fp16_to_f32(b.d) * a.d, float(isum), sum);  // explicit: SIMD code equals it
      continue;
    }
    UnpackedQ45K u;
    unpack_q45k(t, w, i, u);
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 32; ++l) s += int32_t(u.q[32 * j + l]) * a.qs[32 * j + l];
      isum += u.sc[j] * s;
      msum += u.m[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
    }
    sum = std::fma(u.d * a.d, float(isum), std::fma(-(u.dmin * a.d), float(msum), sum));
  }
  return sum;
}

}  // namespace dip
