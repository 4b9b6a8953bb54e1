#include "ops/elementwise_simd.h"

#include <algorithm>
#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "ops/elementwise.h"
#include "ops/quant_k.h"
#include "util/fp.h"

HWY_BEFORE_NAMESPACE();
namespace dip {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// expf_ggml() lane-wise: the same constants and FMA sequence; 2^n applied through the
// exponent bits while |n| <= 126 (lanes beyond that are finished by the scalar code).
template <class D, class V>
HWY_INLINE V ExpGgml(D d, V x, bool& needs_scalar) {
  const hn::RebindToSigned<D> di;
  const auto r = hn::Set(d, 0x1.8p23f);
  const auto z = hn::MulAdd(x, hn::Set(d, 0x1.715476p+0f), r);
  const auto n = hn::Sub(z, r);
  const auto b =
      hn::NegMulAdd(n, hn::Set(d, 0x1.7f7d1cp-20f), hn::NegMulAdd(n, hn::Set(d, 0x1.62e4p-1f), x));
  const auto u = hn::Mul(b, b);
  const auto j = hn::MulAdd(
      hn::MulAdd(hn::MulAdd(hn::Set(d, 0x1.0e4020p-7f), b, hn::Set(d, 0x1.573e2ep-5f)), u,
                 hn::MulAdd(hn::Set(d, 0x1.555e66p-3f), b, hn::Set(d, 0x1.fffdb6p-2f))),
      u, hn::MulAdd(hn::Set(d, 0x1.ffffecp-1f), b, hn::Set(d, 1.0f)));
  needs_scalar = !hn::AllTrue(d, hn::Le(hn::Abs(n), hn::Set(d, 126.0f)));
  const auto ni = hn::ConvertTo(di, n);
  const auto scale = hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(ni, hn::Set(di, 127))));
  return hn::Mul(j, scale);
}

void Swiglu(const float* g, const float* u, float* h, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const auto gv = hn::LoadU(d, g + i);
    bool scalar = false;
    const auto e = ExpGgml(d, hn::Neg(gv), scalar);
    if (HWY_UNLIKELY(scalar)) {
      for (size_t k = i; k < i + L; ++k) h[k] = g[k] / (1.0f + expf_ggml(-g[k])) * u[k];
      continue;
    }
    hn::StoreU(hn::Mul(hn::Div(gv, hn::Add(hn::Set(d, 1.0f), e)), hn::LoadU(d, u + i)), d, h + i);
  }
  for (; i < n; ++i) h[i] = g[i] / (1.0f + expf_ggml(-g[i])) * u[i];
}

// x[i] = expf_ggml(x[i] - shift) (the softmax numerators).
void ExpShifted(float* x, size_t n, float shift) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto sv = hn::Set(d, shift);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    bool scalar = false;
    const auto e = ExpGgml(d, hn::Sub(hn::LoadU(d, x + i), sv), scalar);
    if (HWY_UNLIKELY(scalar)) {
      for (size_t k = i; k < i + L; ++k) x[k] = expf_ggml(x[k] - shift);
      continue;
    }
    hn::StoreU(e, d, x + i);
  }
  for (; i < n; ++i) x[i] = expf_ggml(x[i] - shift);
}

float MaxOf(const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto mv = hn::Set(d, -INFINITY);
  size_t i = 0;
  for (; i + L <= n; i += L) mv = hn::Max(mv, hn::LoadU(d, x + i));
  float m = hn::GetLane(hn::MaxOfLanes(d, mv));
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// F16 conversions through the hardware (F16C with AVX2 and above, NEON, SVE), which rounds to
// nearest even as f32_to_fp16 does: f(d, dh, i) for every whole vector at i; returns where
// the scalar tail starts. Highway emulates the conversion on the older x86 targets and the
// portable ones, without that rounding: those take the scalar loop for everything.
template <class F>
HWY_INLINE size_t ForEachF16Vector(size_t n, F&& f) {
  size_t i = 0;
#if !(HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_EMU128 || \
      HWY_TARGET == HWY_SCALAR)
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  for (const size_t L = hn::Lanes(d); i + L <= n; i += L) f(d, dh, i);
#else
  (void)n, (void)f;
#endif
  return i;
}

// dst[i] = round_fp16(src[i] * scale).
void RoundFp16(const float* src, float scale, float* dst, size_t n) {
  size_t i = ForEachF16Vector(n, [&](auto d, auto dh, size_t j) {
    const auto v = hn::Mul(hn::LoadU(d, src + j), hn::Set(d, scale));
    hn::StoreU(hn::PromoteTo(d, hn::DemoteTo(dh, v)), d, dst + j);
  });
  for (; i < n; ++i) dst[i] = round_fp16(src[i] * scale);
}

// dst[i] = f32_to_fp16(src[i]).
void EncodeF16(const float* src, uint16_t* dst, size_t n) {
  size_t i = ForEachF16Vector(n, [&](auto d, auto dh, size_t j) {
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(d, src + j)), dh,
               reinterpret_cast<hwy::float16_t*>(dst + j));
  });
  for (; i < n; ++i) dst[i] = f32_to_fp16(src[i]);
}

void QuantizeQ8Act(const float* x, BlockQ8_0* y, size_t n) {
  const hn::CappedTag<float, 8> d;  // 8 lanes: at most 4 vectors per 32-element block
  const hn::RebindToSigned<decltype(d)> di;
  const hn::Rebind<int16_t, decltype(d)> d16;
  const hn::Rebind<int8_t, decltype(d)> d8;
  const size_t L = hn::Lanes(d);
  for (size_t b = 0; b < n / kQK8_0; ++b) {
    const float* xb = x + b * kQK8_0;
    auto mx = hn::Zero(d);
    for (size_t j = 0; j < kQK8_0; j += L) mx = hn::Max(mx, hn::Abs(hn::LoadU(d, xb + j)));
    const float amax = hn::GetLane(hn::MaxOfLanes(d, mx));
    y[b].d = f32_to_fp16(amax / 127.0f);
    const auto id = hn::Set(d, amax != 0.0f ? 127.0f / amax : 0.0f);
    for (size_t j = 0; j < kQK8_0; j += L) {
      const auto q = hn::NearestInt(hn::Mul(hn::LoadU(d, xb + j), id));
      hn::StoreU(hn::DemoteTo(d8, hn::DemoteTo(d16, q)), d8, y[b].qs + j);
    }
    (void)di;
  }
}

// quantize_row_q8_K lane-wise: the first element of largest magnitude gives the scale (its
// sign included), products rounded to nearest even and capped at 127, sums of each 16.
void QuantizeQ8K(const float* x, BlockQ8K* y, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::RebindToSigned<decltype(d)> di;
  const hn::Rebind<int16_t, decltype(d)> d16;
  const hn::Rebind<int8_t, decltype(d)> d8;
  const size_t L = hn::Lanes(d);
  for (size_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ8K& out = y[b];
    auto mx = hn::Zero(d);
    for (size_t j = 0; j < kQK_K; j += L) mx = hn::Max(mx, hn::Abs(hn::LoadU(d, x + j)));
    const float amax = hn::GetLane(hn::MaxOfLanes(d, mx));
    if (!(amax > 0.0f)) {  // all zero (the scalar loop never raises amax past 0)
      out = BlockQ8K{};
      continue;
    }
    float max = amax;
    for (size_t j = 0; j < kQK_K; j += L) {
      const auto v = hn::LoadU(d, x + j);
      const intptr_t first = hn::FindFirstTrue(d, hn::Eq(hn::Abs(v), hn::Set(d, amax)));
      if (first >= 0) {
        max = x[j + size_t(first)];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const auto vs = hn::Set(d, iscale);
    const auto cap = hn::Set(di, 127);
    for (size_t j = 0; j < kQK_K; j += L) {
      const auto q = hn::Min(hn::NearestInt(hn::Mul(vs, hn::LoadU(d, x + j))), cap);
      hn::StoreU(hn::DemoteTo(d8, hn::DemoteTo(d16, q)), d8, out.qs + j);
    }
    q8k_block_sums(out);
    out.d = 1.0f / iscale;
  }
}

void DecodeHalf(bool bf16, const uint16_t* src, float* dst, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<uint16_t, decltype(d)> d16;
  const hn::Rebind<uint32_t, decltype(d)> d32;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const size_t L = hn::Lanes(d);
  size_t i = 0;
  if (bf16) {
    for (; i + L <= n; i += L) {
      hn::StoreU(hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(d32, hn::LoadU(d16, src + i)))), d,
                 dst + i);
    }
  } else {
    for (; i + L <= n; i += L) {
      hn::StoreU(hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(src + i))),
                 d, dst + i);
    }
  }
  for (; i < n; ++i) dst[i] = bf16 ? bf16_to_f32(src[i]) : fp16_to_f32(src[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace dip
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace dip {
HWY_EXPORT(Swiglu);
HWY_EXPORT(QuantizeQ8Act);
HWY_EXPORT(QuantizeQ8K);
HWY_EXPORT(DecodeHalf);
HWY_EXPORT(ExpShifted);
HWY_EXPORT(MaxOf);
HWY_EXPORT(RoundFp16);
HWY_EXPORT(EncodeF16);

void swiglu_simd(const float* g, const float* u, float* h, size_t n) {
  HWY_DYNAMIC_DISPATCH(Swiglu)(g, u, h, n);
}
void quantize_row_q8_0_act_simd(const float* x, BlockQ8_0* y, size_t n) {
  HWY_DYNAMIC_DISPATCH(QuantizeQ8Act)(x, y, n);
}
void quantize_row_q8_K_simd(const float* x, BlockQ8K* y, size_t n) {
  HWY_DYNAMIC_DISPATCH(QuantizeQ8K)(x, y, n);
}
void decode_half_row(bool bf16, const uint16_t* src, float* dst, size_t n) {
  HWY_DYNAMIC_DISPATCH(DecodeHalf)(bf16, src, dst, n);
}
void exp_shifted_simd(float* x, size_t n, float shift) {
  HWY_DYNAMIC_DISPATCH(ExpShifted)(x, n, shift);
}
float max_simd(const float* x, size_t n) { return HWY_DYNAMIC_DISPATCH(MaxOf)(x, n); }
void round_fp16_simd(const float* src, float scale, float* dst, size_t n) {
  HWY_DYNAMIC_DISPATCH(RoundFp16)(src, scale, dst, n);
}
void encode_f16_row(const float* src, uint16_t* dst, size_t n) {
  HWY_DYNAMIC_DISPATCH(EncodeF16)(src, dst, n);
}
}  // namespace dip
#endif
