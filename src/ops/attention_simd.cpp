// Highway versions of the llama.cpp-order attention products (attention_order.h): the same
// FMAs per lane and the same tree sums as the scalar references, so bit-identical to them on
// targets with FMA. The 16 lanes of ggml's AVX-512 registers are 16 / N vectors of N lanes.
#include "ops/attention_order.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "util/fp.h"

HWY_BEFORE_NAMESPACE();
namespace dip {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x and v are floats that hold F16 values, or the F16 values themselves (the KV cache read in
// place): widening F16 is exact, so both give the same sums.
template <class D>
HWY_INLINE hn::Vec<D> LoadF32(D d, const float* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadF32(D d, const uint16_t* p) {
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}
HWY_INLINE float ToF32(float v) { return v; }
HWY_INLINE float ToF32(uint16_t v) { return fp16_to_f32(v); }

// Accumulators live in memory (an L1 line or four), not in arrays of vectors: SVE's
// sizeless vector types cannot form arrays.
template <class T>
HWY_INLINE float F16DotT(F16DotOrder order, const T* x, const float* y, size_t n) {
  const hn::CappedTag<float, 16> d;
  const size_t N = hn::Lanes(d);
  HWY_ALIGN float acc[64] = {};
  if (order == F16DotOrder::kTinyBlas) {
    for (size_t i = 0; i + 16 <= n; i += 16)
      for (size_t k = 0; k < 16; k += N)
        hn::Store(hn::MulAdd(LoadF32(d, x + i + k), hn::LoadU(d, y + i + k), hn::Load(d, acc + k)),
                  d, acc + k);
    return tree_sum16(acc);
  }
  const size_t np = n & ~size_t(63);
  for (size_t i = 0; i < np; i += 64)
    for (size_t k = 0; k < 64; k += N)
      hn::Store(hn::MulAdd(LoadF32(d, x + i + k), hn::LoadU(d, y + i + k), hn::Load(d, acc + k)), d,
                acc + k);
  for (size_t k = 0; k < 16; k += N) {
    const auto s02 = hn::Add(hn::Load(d, acc + k), hn::Load(d, acc + 32 + k));
    const auto s13 = hn::Add(hn::Load(d, acc + 16 + k), hn::Load(d, acc + 48 + k));
    hn::Store(hn::Add(s02, s13), d, acc + k);
  }
  double sum = tree_sum16(acc);
  for (size_t i = np; i < n; ++i) sum += double(ToF32(x[i]) * y[i]);
  return float(sum);
}

float F16Dot(F16DotOrder order, const float* x, const float* y, size_t n) {
  return F16DotT(order, x, y, n);
}

// scores[j] = dot(k row j, q) * scale for j in [j0, j1), the F16 cache read in place: one call
// per head instead of one per position.
void F16ScoreRows(F16DotOrder order, const uint16_t* k, size_t k_stride, size_t j0, size_t j1,
                  const float* q, size_t hd, float scale, float* scores) {
  for (size_t j = j0; j < j1; ++j) scores[j] = F16DotT(order, k + j * k_stride, q, hd) * scale;
}

// out[i] = (a0[i] + a2[i]) + (a1[i] + a3[i]), i < n (out may be a0): the last two levels of
// ggml's register tree, here across rows of lanes.
void Fold4(const float* a0, const float* a1, const float* a2, const float* a3, size_t n,
           float* out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto s02 = hn::Add(hn::LoadU(d, a0 + i), hn::LoadU(d, a2 + i));
    const auto s13 = hn::Add(hn::LoadU(d, a1 + i), hn::LoadU(d, a3 + i));
    hn::StoreU(hn::Add(s02, s13), d, out + i);
  }
  for (; i < n; ++i) out[i] = (a0[i] + a2[i]) + (a1[i] + a3[i]);
}

template <class T>
HWY_INLINE void F16WeightedSumT(F16DotOrder order, const float* p, const T* v, size_t v_stride,
                                size_t j0, size_t j1, size_t hd, float* scratch, float* out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t slots = order == F16DotOrder::kTinyBlas ? 16 : 64;
  std::fill(scratch, scratch + slots * hd, 0.0f);
  for (size_t j = j0; j < j1; ++j) {
    float* acc = scratch + (j % slots) * hd;
    const T* vr = v + j * v_stride;
    const auto pj = hn::Set(d, p[j]);
    size_t i = 0;
    for (; i + N <= hd; i += N)
      hn::StoreU(hn::MulAdd(pj, LoadF32(d, vr + i), hn::LoadU(d, acc + i)), d, acc + i);
    for (; i < hd; ++i) acc[i] = std::fma(p[j], ToF32(vr[i]), acc[i]);
  }
  // Lanes: for kVecDot fold the four accumulators first, (0 + 2) + (1 + 3), into slots 0..15.
  if (order == F16DotOrder::kVecDot) {
    for (size_t l = 0; l < 16; ++l) {
      float* a0 = scratch + l * hd;
      Fold4(a0, a0 + 16 * hd, a0 + 32 * hd, a0 + 48 * hd, hd, a0);
    }
  }
  // The tree over the 16 lane rows: rows l += l + 8, then l += l + 4, then (0 + 2) + (1 + 3).
  for (size_t half : {size_t(8), size_t(4)}) {
    for (size_t l = 0; l < half; ++l) {
      float* a = scratch + l * hd;
      const float* b = scratch + (l + half) * hd;
      size_t i = 0;
      for (; i + N <= hd; i += N)
        hn::StoreU(hn::Add(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, a + i);
      for (; i < hd; ++i) a[i] += b[i];
    }
  }
  Fold4(scratch, scratch + hd, scratch + 2 * hd, scratch + 3 * hd, hd, out);
}

void F16WeightedSum(F16DotOrder order, const float* p, const float* v, size_t v_stride, size_t j0,
                    size_t j1, size_t hd, float* scratch, float* out) {
  F16WeightedSumT(order, p, v, v_stride, j0, j1, hd, scratch, out);
}
void F16WeightedSumHalf(F16DotOrder order, const float* p, const uint16_t* v, size_t v_stride,
                        size_t j0, size_t j1, size_t hd, float* scratch, float* out) {
  F16WeightedSumT(order, p, v, v_stride, j0, j1, hd, scratch, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace dip
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace dip {
HWY_EXPORT(F16Dot);
HWY_EXPORT(F16ScoreRows);
HWY_EXPORT(F16WeightedSum);
HWY_EXPORT(F16WeightedSumHalf);

float f16_dot_simd(F16DotOrder order, const float* x, const float* y, size_t n) {
  return HWY_DYNAMIC_DISPATCH(F16Dot)(order, x, y, n);
}

void f16_score_rows_simd(F16DotOrder order, const uint16_t* k, size_t k_stride, size_t j0,
                         size_t j1, const float* q, size_t hd, float scale, float* scores) {
  HWY_DYNAMIC_DISPATCH(F16ScoreRows)(order, k, k_stride, j0, j1, q, hd, scale, scores);
}

void f16_weighted_sum_simd(F16DotOrder order, const float* p, const float* v, size_t v_stride,
                           size_t j0, size_t j1, size_t hd, float* scratch, float* out) {
  HWY_DYNAMIC_DISPATCH(F16WeightedSum)(order, p, v, v_stride, j0, j1, hd, scratch, out);
}
void f16_weighted_sum_simd(F16DotOrder order, const float* p, const uint16_t* v, size_t v_stride,
                           size_t j0, size_t j1, size_t hd, float* scratch, float* out) {
  HWY_DYNAMIC_DISPATCH(F16WeightedSumHalf)(order, p, v, v_stride, j0, j1, hd, scratch, out);
}
}  // namespace dip
#endif
