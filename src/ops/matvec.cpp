// Highway kernels with dynamic dispatch: compiled for every x86 and Arm target Highway knows,
// the best one for the running CPU is picked at first call.
#include "ops/matvec.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matvec.cpp"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "ops/elementwise_simd.h"
#include "ops/kernel_tiling.h"
#include "ops/quant.h"
#include "ops/quant_k.h"
#include "util/fp.h"

HWY_BEFORE_NAMESPACE();
namespace dip {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

float DotF32(const float* a, const float* b, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + L), hn::LoadU(d, b + i + L), s1);
  }
  for (; i + L <= n; i += L) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// One vector of F16 or BF16 values widened to F32.
template <bool kBF16, class D>
HWY_INLINE hn::Vec<D> LoadHalfAsF32(D d, const uint16_t* p) {
  if constexpr (kBF16) {
    const hn::Rebind<uint16_t, D> d16;
    const hn::Rebind<uint32_t, D> d32;
    return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(d32, hn::LoadU(d16, p))));
  } else {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  }
}

template <bool kBF16>
float DotHalf(const uint16_t* a, const uint16_t* b, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto load = [&](const uint16_t* p) { return LoadHalfAsF32<kBF16>(d, p); };
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    s0 = hn::MulAdd(load(a + i), load(b + i), s0);
    s1 = hn::MulAdd(load(a + i + L), load(b + i + L), s1);
  }
  for (; i + L <= n; i += L) s0 = hn::MulAdd(load(a + i), load(b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) {
    s += kBF16 ? bf16_to_f32(a[i]) * bf16_to_f32(b[i]) : fp16_to_f32(a[i]) * fp16_to_f32(b[i]);
  }
  return s;
}

// F16/BF16 weights against an activation already decoded to floats (from its F16/BF16
// rounding, so the products are DotHalf's): the activation's conversion is done once per
// call instead of once per weight row, and four accumulators hide the FMA latency.
template <bool kBF16>
float DotHalfF32(const uint16_t* w, const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto load = [&](const uint16_t* p) { return LoadHalfAsF32<kBF16>(d, p); };
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    // Every 64-byte line, kWeightPrefetchBytes ahead: the weights stream once.
    for (size_t b = 0; b < 4 * L * sizeof(uint16_t); b += 64) {
      hwy::Prefetch(reinterpret_cast<const uint8_t*>(w + i) + kWeightPrefetchBytes + b);
    }
    s0 = hn::MulAdd(load(w + i), hn::LoadU(d, x + i), s0);
    s1 = hn::MulAdd(load(w + i + L), hn::LoadU(d, x + i + L), s1);
    s2 = hn::MulAdd(load(w + i + 2 * L), hn::LoadU(d, x + i + 2 * L), s2);
    s3 = hn::MulAdd(load(w + i + 3 * L), hn::LoadU(d, x + i + 3 * L), s3);
  }
  for (; i + L <= n; i += L) s0 = hn::MulAdd(load(w + i), hn::LoadU(d, x + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < n; ++i) s += (kBF16 ? bf16_to_f32(w[i]) : fp16_to_f32(w[i])) * x[i];
  return s;
}

// One decoded activation row against F16/BF16 weight rows [r0, r1).
void MatvecHalf(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const float* x,
                float* y, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    const uint16_t* wr = reinterpret_cast<const uint16_t*>(w + r * wrow_bytes);
    y[r] = wt == TensorType::BF16 ? DotHalfF32<true>(wr, x, n) : DotHalfF32<false>(wr, x, n);
  }
}

// Q8_0 x Q8_0 and Q4_0 x Q8_0: int16 products summed pairwise into int32 (pmaddwd on x86),
// scaled per block into a float accumulator; one horizontal sum at the end.
template <bool kQ4>
float DotQ(const void* wv, const BlockQ8_0* x, size_t nb) {
  const hn::CappedTag<int16_t, 16> d16;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Rebind<float, decltype(d32)> df;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const hn::Rebind<uint8_t, decltype(d16)> du8;
  const size_t L = hn::Lanes(d16);
  auto acc = hn::Zero(df);
  for (size_t b = 0; b < nb; ++b) {
    auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
    float dw;
    if constexpr (kQ4) {
      const BlockQ4_0& w = static_cast<const BlockQ4_0*>(wv)[b];
      dw = fp16_to_f32(w.d);
      const auto eight = hn::Set(d16, 8);
      const auto mask = hn::Set(d16, 0x0f);
      for (size_t j = 0; j < 16; j += L) {
        const auto q = hn::BitCast(
            d16, hn::PromoteTo(hn::Rebind<uint16_t, decltype(d16)>(), hn::LoadU(du8, w.qs + j)));
        const auto lo = hn::Sub(hn::And(q, mask), eight);
        const auto hi = hn::Sub(hn::ShiftRight<4>(q), eight);
        s0 = hn::ReorderWidenMulAccumulate(d32, lo, hn::PromoteTo(d16, hn::LoadU(d8, x[b].qs + j)),
                                           s0, s1);
        s0 = hn::ReorderWidenMulAccumulate(
            d32, hi, hn::PromoteTo(d16, hn::LoadU(d8, x[b].qs + 16 + j)), s0, s1);
      }
    } else {
      const BlockQ8_0& w = static_cast<const BlockQ8_0*>(wv)[b];
      dw = fp16_to_f32(w.d);
      for (size_t j = 0; j < 32; j += L) {
        s0 = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::LoadU(d8, w.qs + j)),
                                           hn::PromoteTo(d16, hn::LoadU(d8, x[b].qs + j)), s0, s1);
      }
    }
    const auto isum = hn::RearrangeToOddPlusEven(s0, s1);
    acc = hn::MulAdd(hn::ConvertTo(df, isum), hn::Set(df, dw * fp16_to_f32(x[b].d)), acc);
  }
  return hn::GetLane(hn::SumOfLanes(df, acc));
}

// K-quants x Q8_K: the levels unpacked in vectors, multiplied by their sub-block's scale (int16:
// at most 63 * 31 or 32 * 128), then by the activations into int32 lanes: one exact integer
// sum per super-block, combined in floats with dot_k's explicit FMAs (bit-identical to it).
template <TensorType kType>
float DotK(const void* wv, const BlockQ8K* act, size_t nb) {
  const hn::CappedTag<int16_t, 16> d16;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const hn::Rebind<uint8_t, decltype(d16)> du8;
  const hn::Rebind<uint16_t, decltype(d16)> du16;
  const size_t L = hn::Lanes(d16);  // 16 or 8: divides 16, so a vector never spans two scales
  auto bytes = [&](const uint8_t* p) {
    return hn::BitCast(d16, hn::PromoteTo(du16, hn::LoadU(du8, p)));
  };
  auto acts = [&](const int8_t* p) { return hn::PromoteTo(d16, hn::LoadU(d8, p)); };
  const auto low4 = hn::Set(d16, 0x0f), low2 = hn::Set(d16, 3), one = hn::Set(d16, 1);
  float sum = 0.0f;
  for (size_t i = 0; i < nb; ++i) {
    const BlockQ8K& a = act[i];
    auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
    auto mac = [&](hn::Vec<decltype(d16)> q, int scale, size_t e) {
      s0 = hn::ReorderWidenMulAccumulate(d32, hn::Mul(q, hn::Set(d16, int16_t(scale))),
                                         acts(a.qs + e), s0, s1);
    };
    if constexpr (kType == TensorType::Q2_K || kType == TensorType::Q3_K) {
      // Element 128 h + 32 k + l: bits 2k of qs[32 h + l]; Q3_K's third bit is bit 4 h + k of
      // hmask[l], and a level is (low bits | third bit << 2) - 4.
      constexpr bool kQ3 = kType == TensorType::Q3_K;
      using Block = std::conditional_t<kQ3, BlockQ3K, BlockQ2K>;
      const Block& b = static_cast<const Block*>(wv)[i];
      int sc[16], m[16] = {};
      for (int j = 0; j < 16; ++j) {
        if constexpr (kQ3) {
          sc[j] = q3k_scale(b.scales, j);
        } else {
          sc[j] = b.scales[j] & 0x0f;
          m[j] = b.scales[j] >> 4;
        }
      }
      const auto four = hn::Set(d16, 4);
      for (size_t h = 0; h < 2; ++h) {
        for (size_t l = 0; l < 32; l += L) {
          const auto qv = bytes(b.qs + 32 * h + l);
          decltype(hn::Zero(d16)) hv;
          if constexpr (kQ3) hv = bytes(b.hmask + l);
          for (int k = 0; k < 4; ++k) {
            auto q = hn::And(hn::ShiftRightSame(qv, 2 * k), low2);
            if constexpr (kQ3) {
              const auto high = hn::And(hn::ShiftRightSame(hv, int(4 * h) + k), one);
              q = hn::Sub(hn::Or(q, hn::ShiftLeft<2>(high)), four);
            }
            const size_t e = 128 * h + 32 * k + l;
            mac(q, sc[e / 16], e);
          }
        }
      }
      const int32_t isum = hn::GetLane(hn::SumOfLanes(d32, hn::RearrangeToOddPlusEven(s0, s1)));
      if constexpr (kQ3) {
        sum = std::fma(fp16_to_f32(b.d) * a.d, float(isum), sum);
      } else {
        int32_t msum = 0;
        for (int j = 0; j < 16; ++j) msum += m[j] * a.bsums[j];
        sum = std::fma(fp16_to_f32(b.d) * a.d, float(isum),
                       std::fma(-(fp16_to_f32(b.dmin) * a.d), float(msum), sum));
      }
    } else if constexpr (kType == TensorType::Q6_K) {
      const BlockQ6K& b = static_cast<const BlockQ6K*>(wv)[i];
      const auto k32 = hn::Set(d16, 32);
      for (size_t h = 0; h < 2; ++h) {
        const uint8_t* ql = b.ql + 64 * h;
        const uint8_t* qh = b.qh + 32 * h;
        const int8_t* sc = b.scales + 8 * h;
        for (size_t l = 0; l < 32; l += L) {
          const auto qa = bytes(ql + l), qb = bytes(ql + 32 + l), hv = bytes(qh + l);
          const size_t is = l / 16, e = 128 * h + l;
          mac(hn::Sub(hn::Or(hn::And(qa, low4), hn::ShiftLeft<4>(hn::And(hv, low2))), k32), sc[is],
              e);
          mac(hn::Sub(
                  hn::Or(hn::And(qb, low4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(hv), low2))),
                  k32),
              sc[is + 2], e + 32);
          mac(hn::Sub(hn::Or(hn::ShiftRight<4>(qa),
                             hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(hv), low2))),
                      k32),
              sc[is + 4], e + 64);
          mac(hn::Sub(hn::Or(hn::ShiftRight<4>(qb), hn::ShiftLeft<4>(hn::ShiftRight<6>(hv))), k32),
              sc[is + 6], e + 96);
        }
      }
      const int32_t isum = hn::GetLane(hn::SumOfLanes(d32, hn::RearrangeToOddPlusEven(s0, s1)));
      sum = std::fma(fp16_to_f32(b.d) * a.d, float(isum), sum);
    } else {
      using Block = std::conditional_t<kType == TensorType::Q5_K, BlockQ5K, BlockQ4K>;
      const Block& b = static_cast<const Block*>(wv)[i];
      uint8_t sc[8], m[8];
      for (int j = 0; j < 8; ++j) scale_min_k4(j, b.scales, sc[j], m[j]);
      for (size_t l = 0; l < 32; l += L) {
        decltype(hn::Zero(d16)) hv;
        if constexpr (kType == TensorType::Q5_K) hv = bytes(b.qh + l);
        for (size_t c = 0; c < 4; ++c) {
          const auto q = bytes(b.qs + 32 * c + l);
          auto lo = hn::And(q, low4), hi = hn::ShiftRight<4>(q);
          if constexpr (kType == TensorType::Q5_K) {
            lo = hn::Or(lo, hn::ShiftLeft<4>(hn::And(hv, one)));
            hi = hn::Or(hi, hn::ShiftLeft<4>(hn::And(hn::ShiftRight<1>(hv), one)));
            hv = hn::ShiftRight<2>(hv);
          }
          mac(lo, sc[2 * c], 64 * c + l);
          mac(hi, sc[2 * c + 1], 64 * c + 32 + l);
        }
      }
      int32_t msum = 0;
      for (int j = 0; j < 8; ++j) msum += m[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
      const int32_t isum = hn::GetLane(hn::SumOfLanes(d32, hn::RearrangeToOddPlusEven(s0, s1)));
      sum = std::fma(fp16_to_f32(b.d) * a.d, float(isum),
                     std::fma(-(fp16_to_f32(b.dmin) * a.d), float(msum), sum));
    }
  }
  return sum;
}

float DotAny(TensorType wt, const void* w, const void* act, size_t n) {
  switch (wt) {
    case TensorType::F32:
      return DotF32(static_cast<const float*>(w), static_cast<const float*>(act), n);
    case TensorType::F16:
      return DotHalf<false>(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(act), n);
    case TensorType::BF16:
      return DotHalf<true>(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(act), n);
    case TensorType::Q8_0:
      return DotQ<false>(w, static_cast<const BlockQ8_0*>(act), n / kQK8_0);
    case TensorType::Q4_0:
      return DotQ<true>(w, static_cast<const BlockQ8_0*>(act), n / kQK4_0);
    case TensorType::Q2_K:
      return DotK<TensorType::Q2_K>(w, static_cast<const BlockQ8K*>(act), n / kQK_K);
    case TensorType::Q3_K:
      return DotK<TensorType::Q3_K>(w, static_cast<const BlockQ8K*>(act), n / kQK_K);
    case TensorType::Q4_K:
      return DotK<TensorType::Q4_K>(w, static_cast<const BlockQ8K*>(act), n / kQK_K);
    case TensorType::Q5_K:
      return DotK<TensorType::Q5_K>(w, static_cast<const BlockQ8K*>(act), n / kQK_K);
    case TensorType::Q6_K:
      return DotK<TensorType::Q6_K>(w, static_cast<const BlockQ8K*>(act), n / kQK_K);
    case TensorType::Q8_K:
      break;
  }
  return 0.0f;
}

// The elements of a batched product's rows as float vectors: F32 as stored, F16 and BF16
// widened on load. Weights and activations of a float product share one type (activation_type),
// and widening gives the values decode_half_row would, so the tiles read both in place.
template <TensorType kType>
struct TileElems {
  using T = std::conditional_t<kType == TensorType::F32, float, uint16_t>;
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const T* p) {
    if constexpr (kType == TensorType::F32) {
      return hn::LoadU(d, p);
    } else {
      return LoadHalfAsF32<kType == TensorType::BF16>(d, p);
    }
  }
  static HWY_INLINE float At(const T* p, size_t j) {
    if constexpr (kType == TensorType::F32) {
      return p[j];
    } else if constexpr (kType == TensorType::BF16) {
      return bf16_to_f32(p[j]);
    } else {
      return fp16_to_f32(p[j]);
    }
  }
};

// Every (weight row, activation row) pair of a batched product is summed in one order, whichever
// tile computes it: one accumulator over whole vectors, the sum of its lanes, then the tail in
// element order. So a result does not depend on the tile shape or on how rows were split
// between threads.
template <class E, class D>
HWY_INLINE float FinishPair(D d, hn::Vec<D> acc, const typename E::T* w, const typename E::T* x,
                            size_t i, size_t n) {
  float s = hn::GetLane(hn::SumOfLanes(d, acc));
  for (; i < n; ++i) s += E::At(w, i) * E::At(x, i);
  return s;
}

template <class E>
float DotPair(const typename E::T* w, const typename E::T* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto s = hn::Zero(d);
  size_t i = 0;
  for (; i + L <= n; i += L) s = hn::MulAdd(E::Load(d, w + i), E::Load(d, x + i), s);
  return FinishPair<E>(d, s, w, x, i, n);
}

// x86 targets below AVX-512 have 16 vector registers: a 4x4 tile's sixteen accumulators and
// eight operands would spill, so they take tiles of 4 weight rows x 3 activation rows (twelve
// accumulators, three activation operands, one weight operand). Weight rows are ws elements
// apart, activation rows xs.
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3)
constexpr size_t kActTile = 3;

template <class E>
void DotTile(const typename E::T* w, size_t ws, const typename E::T* x, size_t xs, size_t n,
             float* y, size_t y_stride) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  using V = hn::Vec<decltype(d)>;
  V acc[4][3];
  for (auto& row : acc)
    for (V& a : row) a = hn::Zero(d);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const V x0 = E::Load(d, x + i), x1 = E::Load(d, x + xs + i), x2 = E::Load(d, x + 2 * xs + i);
    for (size_t r = 0; r < 4; ++r) {
      const V wv = E::Load(d, w + r * ws + i);
      acc[r][0] = hn::MulAdd(wv, x0, acc[r][0]);
      acc[r][1] = hn::MulAdd(wv, x1, acc[r][1]);
      acc[r][2] = hn::MulAdd(wv, x2, acc[r][2]);
    }
  }
  for (size_t r = 0; r < 4; ++r) {
    for (size_t b = 0; b < 3; ++b) {
      y[b * y_stride + r] = FinishPair<E>(d, acc[r][b], w + r * ws, x + b * xs, i, n);
    }
  }
}
#else
constexpr size_t kActTile = 4;

// 4 weight rows x 4 activation rows: 8 loads feed 16 FMAs (a 4x1 kernel is load-bound).
// Sixteen named accumulators, not an array: SVE's vector types are sizeless and cannot be
// array elements.
template <class E>
void DotTile(const typename E::T* w, size_t ws, const typename E::T* x, size_t xs, size_t n,
             float* y, size_t y_stride) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto a00 = hn::Zero(d), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
       a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00,
       a33 = a00;
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const auto x0 = E::Load(d, x + i), x1 = E::Load(d, x + xs + i);
    const auto x2 = E::Load(d, x + 2 * xs + i), x3 = E::Load(d, x + 3 * xs + i);
    const auto row = [&](const typename E::T* wr, auto& s0, auto& s1, auto& s2, auto& s3) {
      const auto wv = E::Load(d, wr + i);
      s0 = hn::MulAdd(wv, x0, s0);
      s1 = hn::MulAdd(wv, x1, s1);
      s2 = hn::MulAdd(wv, x2, s2);
      s3 = hn::MulAdd(wv, x3, s3);
    };
    row(w, a00, a01, a02, a03);
    row(w + ws, a10, a11, a12, a13);
    row(w + 2 * ws, a20, a21, a22, a23);
    row(w + 3 * ws, a30, a31, a32, a33);
  }
  const auto put = [&](size_t r, size_t b, const auto& acc) {
    y[b * y_stride + r] = FinishPair<E>(d, acc, w + r * ws, x + b * xs, i, n);
  };
  put(0, 0, a00), put(0, 1, a01), put(0, 2, a02), put(0, 3, a03);
  put(1, 0, a10), put(1, 1, a11), put(1, 2, a12), put(1, 3, a13);
  put(2, 0, a20), put(2, 1, a21), put(2, 2, a22), put(2, 3, a23);
  put(3, 0, a30), put(3, 1, a31), put(3, 2, a32), put(3, 3, a33);
}
#endif

// Batched float products (F32, F16 and BF16 weights, several activation rows), read in place:
// chunks of activation rows of about kActChunkBytes stay in L2 while tiles of four weight rows
// pass them; each weight tile meets the chunk's activation rows kActTile at a time. Half
// precision stays half in the caches (a tile's rows at d_model 2048 fit L1 as F16, not as F32).
template <TensorType kType>
void MatmulTiledAs(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                   size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                   size_t r1) {
  using E = TileElems<kType>;
  using T = typename E::T;
  constexpr size_t kActChunkBytes = 256 << 10;
  const size_t ws = wrow_bytes / sizeof(T), xs = arow_bytes / sizeof(T);
  const size_t chunk = std::max(kActTile, kActChunkBytes / arow_bytes / kActTile * kActTile);
  const auto wrow = [&](size_t r) { return reinterpret_cast<const T*>(w + r * wrow_bytes); };
  const auto xrow = [&](size_t b) { return reinterpret_cast<const T*>(acts + b * arow_bytes); };
  for (size_t c0 = 0; c0 < n_act; c0 += chunk) {
    const size_t c1 = std::min(n_act, c0 + chunk);
    // The next weight tile comes from memory while this one, already in cache, meets the chunk:
    // its lines are prefetched a share per activation tile (a 4 KiB row is a page, too short
    // for the hardware prefetcher to ramp up on).
    const size_t act_tiles = (c1 - c0 + kActTile - 1) / kActTile;
    const size_t tile_lines = (4 * wrow_bytes + 63) / 64;
    const size_t lines_per_act_tile = (tile_lines + act_tiles - 1) / act_tiles;
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
      const uint8_t* next = r + 8 <= r1 ? w + (r + 4) * wrow_bytes : nullptr;
      size_t line = 0;
      const auto prefetch_share = [&] {
        if (!next) return;
        for (const size_t end = std::min(tile_lines, line + lines_per_act_tile); line < end; ++line)
          hwy::Prefetch(next + line * 64);
      };
      size_t b = c0;
      for (; b + kActTile <= c1; b += kActTile) {
        prefetch_share();
        DotTile<E>(wrow(r), ws, xrow(b), xs, n, y + b * y_stride + r, y_stride);
      }
      if (b < c1) {
        // The last activation rows short of a tile (a 4x1 kernel is load-bound): the chunk's
        // last full tile again, whose overlap recomputes equal values, or for a chunk shorter
        // than a tile, a tile reading one row kActTile times, keeping one row's results.
        prefetch_share();
        if (c1 - c0 >= kActTile) {
          b = c1 - kActTile;
          DotTile<E>(wrow(r), ws, xrow(b), xs, n, y + b * y_stride + r, y_stride);
        } else {
          float out[kActTile * 4];
          for (; b < c1; ++b) {
            DotTile<E>(wrow(r), ws, xrow(b), 0, n, out, 4);
            for (size_t q = 0; q < 4; ++q) y[b * y_stride + r + q] = out[q];
          }
        }
      }
    }
    for (; r < r1; ++r) {
      for (size_t b = c0; b < c1; ++b) y[b * y_stride + r] = DotPair<E>(wrow(r), xrow(b), n);
    }
  }
}

void MatmulRowsTiled(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                     const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y,
                     size_t y_stride, size_t r0, size_t r1) {
  if (wt == TensorType::F16) {
    MatmulTiledAs<TensorType::F16>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else if (wt == TensorType::BF16) {
    MatmulTiledAs<TensorType::BF16>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else {
    MatmulTiledAs<TensorType::F32>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  }
}

// Rows [r0, r1) of W against every activation row; activations inner so a weight row is
// read from memory once and reused from L1 for the whole batch.
void MatmulRows(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* act,
                size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* wr = w + r * wrow_bytes;
    for (size_t b = 0; b < n_act; ++b)
      y[b * y_stride + r] = DotAny(wt, wr, act + b * arow_bytes, n);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace dip
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "ops/qdot_arm.h"
#include "ops/qdot_x86.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {
HWY_EXPORT(DotAny);
HWY_EXPORT(MatmulRows);
HWY_EXPORT(MatmulRowsTiled);
HWY_EXPORT(MatvecHalf);

namespace {
// BF16 products run on the AVX512_BF16 kernel where the CPU has one; it reads the BF16
// activation rows as they are. Every other one-token F16/BF16 product runs on the activation
// decoded to floats once per call (batches widen in their tiles). encode_acts and matmul both
// ask here, so they cannot disagree.
bool bf16_kernel_reads_encoded(TensorType act_type) {
  return act_type == TensorType::BF16 && bf16dot_x86_available();
}
}  // namespace

void encode_acts(TensorType weight, const float* x, size_t n, size_t rows, size_t stride,
                 EncodedActs& out) {
  out.type = activation_type(weight);
  out.n = n;
  out.rows = rows;
  out.row_bytes = row_bytes(out.type, n);
  out.data.resize(out.row_bytes * rows);
  for (size_t r = 0; r < rows; ++r) {
    uint8_t* dst = out.data.data() + r * out.row_bytes;
    if (out.type == TensorType::Q8_0) {
      quantize_row_q8_0_act_simd(x + r * stride, reinterpret_cast<BlockQ8_0*>(dst), n);
    } else if (out.type == TensorType::F16) {
      encode_f16_row(x + r * stride, reinterpret_cast<uint16_t*>(dst), n);
    } else if (out.type == TensorType::Q8_K) {
      quantize_row_q8_K_simd(x + r * stride, reinterpret_cast<BlockQ8K*>(dst), n);
    } else {
      quantize_row(out.type, x + r * stride, dst, n);
    }
  }
  out.decoded.clear();
  if (rows == 1 && !bf16_kernel_reads_encoded(out.type) &&
      (out.type == TensorType::F16 || out.type == TensorType::BF16)) {
    out.decoded.resize(rows * n);
    for (size_t r = 0; r < rows; ++r) {
      decode_half_row(out.type == TensorType::BF16, reinterpret_cast<const uint16_t*>(out.row(r)),
                      &out.decoded[r * n], n);
    }
  }
}

float dot_simd(TensorType wt, const void* w, const void* act, size_t n) {
  return HWY_DYNAMIC_DISPATCH(DotAny)(wt, w, act, n);
}

void matmul(TensorType wt, const void* w, size_t n, size_t rows, const EncodedActs& acts, float* y,
            size_t y_stride, ThreadPool* pool) {
  if (acts.type != activation_type(wt) || acts.n != n) {
    fail("internal: activation encoding does not match weight type {}",
         ggml_type_name(uint32_t(wt)));
  }
  const size_t wrb = row_bytes(wt, n);
  const bool tiled =
      acts.rows > 1 && (wt == TensorType::F32 || wt == TensorType::F16 || wt == TensorType::BF16);
  auto* fn = HWY_DYNAMIC_DISPATCH(MatmulRows);
  auto* fn_tiled = HWY_DYNAMIC_DISPATCH(MatmulRowsTiled);
  auto* fn_half = HWY_DYNAMIC_DISPATCH(MatvecHalf);
  const bool half_vec = acts.rows == 1 && !acts.decoded.empty();
  const QdotIsa x86 =
      wt == TensorType::Q8_0 || wt == TensorType::Q4_0 ? qdot_x86_best() : QdotIsa::kNone;
  const ArmQdot arm =
      wt == TensorType::Q8_0 || wt == TensorType::Q4_0 ? qdot_arm_best() : ArmQdot::kNone;
  const bool bf16_x86 = bf16_kernel_reads_encoded(acts.type);
  // llama.cpp repacks Q4_0 matrices with a multiple of 8 rows and sums them in another order
  // (qdot_q4_0_rows_avx512.cpp); the same order here where it does, so results agree bit for bit.
  const bool q4_rows_order = x86 == QdotIsa::kAvx512 && wt == TensorType::Q4_0 && rows % 8 == 0;
  const QdotIsa k_x86 = is_k_quant(wt) ? qdot_x86_best() : QdotIsa::kNone;
  const ArmQdot k_arm = has_arm_k_kernel(wt) ? qdot_arm_best() : ArmQdot::kNone;
  auto body = [&](size_t r0, size_t r1) {
    if (k_x86 != QdotIsa::kNone) {
      kmatmul_x86(k_x86, wt, static_cast<const uint8_t*>(w), wrb, n, acts.data.data(),
                  acts.row_bytes, acts.rows, y, y_stride, r0, r1);
    } else if (k_arm != ArmQdot::kNone) {
      kmatmul_arm(k_arm, wt, static_cast<const uint8_t*>(w), wrb, n, acts.data.data(),
                  acts.row_bytes, acts.rows, y, y_stride, r0, r1);
    } else if (bf16_x86) {
      matmul_bf16_x86(static_cast<const uint8_t*>(w), wrb, n, acts.data.data(), acts.row_bytes,
                      acts.rows, y, y_stride, r0, r1);
    } else if (q4_rows_order) {
      qmatmul_q4_0_rows_x86(static_cast<const uint8_t*>(w), wrb, n, acts.data.data(),
                            acts.row_bytes, acts.rows, y, y_stride, r0, r1);
    } else if (x86 != QdotIsa::kNone) {
      qmatmul_x86(x86, wt, static_cast<const uint8_t*>(w), wrb, n, acts.data.data(), acts.row_bytes,
                  acts.rows, y, y_stride, r0, r1);
    } else if (arm != ArmQdot::kNone) {
      qmatmul_arm(arm, wt, static_cast<const uint8_t*>(w), wrb, n, acts.data.data(), acts.row_bytes,
                  acts.rows, y, y_stride, r0, r1);
    } else if (half_vec) {
      fn_half(wt, static_cast<const uint8_t*>(w), wrb, n, acts.decoded.data(), y, r0, r1);
    } else if (tiled) {
      fn_tiled(wt, static_cast<const uint8_t*>(w), wrb, n, acts.data.data(), acts.row_bytes,
               acts.rows, y, y_stride, r0, r1);
    } else {
      fn(wt, static_cast<const uint8_t*>(w), wrb, n, acts.data.data(), acts.row_bytes, acts.rows, y,
         y_stride, r0, r1);
    }
  };
  if (pool && rows >= 64) {
    pool->parallel_for(rows, 16, body);
  } else {
    body(0, rows);
  }
}

}  // namespace dip
#endif
