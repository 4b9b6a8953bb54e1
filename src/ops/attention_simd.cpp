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

// The lanes of ggml's accumulators: kTinyBlas one register of 16 lanes over steps of 16,
// kVecDot four (64 lanes) over steps of 64, the elements past the last full step left over.
inline size_t DotLanes(F16DotOrder order) { return order == F16DotOrder::kTinyBlas ? 16 : 64; }
inline size_t DotSteps(F16DotOrder order, size_t n) { return n & ~(DotLanes(order) - 1); }

// From the lanes to the sum: for kVecDot the four accumulators folded (0 + 2) + (1 + 3), the
// 16-lane tree, then the leftover elements added in double.
template <class T>
HWY_INLINE float FinishDot(F16DotOrder order, float* acc, const T* x, const float* y, size_t n) {
  if (order == F16DotOrder::kTinyBlas) return tree_sum16(acc);
  for (size_t l = 0; l < 16; ++l) acc[l] = (acc[l] + acc[32 + l]) + (acc[16 + l] + acc[48 + l]);
  double sum = tree_sum16(acc);
  for (size_t i = DotSteps(order, n); i < n; ++i) sum += double(ToF32(x[i]) * y[i]);
  return float(sum);
}

// Accumulators live in memory (an L1 line or four), not in arrays of vectors: SVE's
// sizeless vector types cannot form arrays.
template <class T>
HWY_INLINE float F16DotT(F16DotOrder order, const T* x, const float* y, size_t n) {
  const hn::CappedTag<float, 16> d;
  const size_t N = hn::Lanes(d), lanes = DotLanes(order), np = DotSteps(order, n);
  HWY_ALIGN float acc[64] = {};
  for (size_t i = 0; i < np; i += lanes)
    for (size_t k = 0; k < lanes; k += N)
      hn::Store(hn::MulAdd(LoadF32(d, x + i + k), hn::LoadU(d, y + i + k), hn::Load(d, acc + k)), d,
                acc + k);
  return FinishDot(order, acc, x, y, n);
}

// Eight key rows at a time against one query, each lane's FMAs in the order F16DotT makes
// them (lanes are independent, so taking one group of N lanes through every step before the
// next changes no sum). The eight rows' accumulators stay in registers: eight independent FMA
// chains, where a row at a time is one chain that waits on each FMA and on storing and
// reloading its accumulators.
template <class T>
HWY_INLINE void F16Dot8Rows(F16DotOrder order, const T* x, size_t x_stride, const float* y,
                            size_t n, float* out) {
  const hn::CappedTag<float, 16> d;
  const size_t N = hn::Lanes(d), lanes = DotLanes(order), np = DotSteps(order, n);
  HWY_ALIGN float acc[8][64];
  const T *x0 = x, *x1 = x0 + x_stride, *x2 = x1 + x_stride, *x3 = x2 + x_stride;
  const T *x4 = x3 + x_stride, *x5 = x4 + x_stride, *x6 = x5 + x_stride, *x7 = x6 + x_stride;
  for (size_t k = 0; k < lanes; k += N) {
    auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = k; i < np; i += lanes) {
      const auto yv = hn::LoadU(d, y + i);
      a0 = hn::MulAdd(LoadF32(d, x0 + i), yv, a0);
      a1 = hn::MulAdd(LoadF32(d, x1 + i), yv, a1);
      a2 = hn::MulAdd(LoadF32(d, x2 + i), yv, a2);
      a3 = hn::MulAdd(LoadF32(d, x3 + i), yv, a3);
      a4 = hn::MulAdd(LoadF32(d, x4 + i), yv, a4);
      a5 = hn::MulAdd(LoadF32(d, x5 + i), yv, a5);
      a6 = hn::MulAdd(LoadF32(d, x6 + i), yv, a6);
      a7 = hn::MulAdd(LoadF32(d, x7 + i), yv, a7);
    }
    hn::Store(a0, d, acc[0] + k);
    hn::Store(a1, d, acc[1] + k);
    hn::Store(a2, d, acc[2] + k);
    hn::Store(a3, d, acc[3] + k);
    hn::Store(a4, d, acc[4] + k);
    hn::Store(a5, d, acc[5] + k);
    hn::Store(a6, d, acc[6] + k);
    hn::Store(a7, d, acc[7] + k);
  }
  for (size_t r = 0; r < 8; ++r) out[r] = FinishDot(order, acc[r], x + r * x_stride, y, n);
}

// scores[j] = dot(k row j, q) * scale for j in [j0, j1): one call per head and query, eight
// rows at a time. T is float (rows decoded once per batch) or the F16 cache read in place.
template <class T>
HWY_INLINE void F16ScoreRowsT(F16DotOrder order, const T* k, size_t k_stride, size_t j0, size_t j1,
                              const float* q, size_t hd, float scale, float* scores) {
  size_t j = j0;
  for (; j + 8 <= j1; j += 8) {
    float dots[8];
    F16Dot8Rows(order, k + j * k_stride, k_stride, q, hd, dots);
    for (size_t r = 0; r < 8; ++r) scores[j + r] = dots[r] * scale;
  }
  for (; j < j1; ++j) scores[j] = F16DotT(order, k + j * k_stride, q, hd) * scale;
}

void F16ScoreRows(F16DotOrder order, const uint16_t* k, size_t k_stride, size_t j0, size_t j1,
                  const float* q, size_t hd, float scale, float* scores) {
  F16ScoreRowsT(order, k, k_stride, j0, j1, q, hd, scale, scores);
}
void F16ScoreRowsF32(F16DotOrder order, const float* k, size_t k_stride, size_t j0, size_t j1,
                     const float* q, size_t hd, float scale, float* scores) {
  F16ScoreRowsT(order, k, k_stride, j0, j1, q, hd, scale, scores);
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

// acc[c + i] = sum over j in [j, j1) in steps of `step` of p[j] * v[j * v_stride + c + i],
// i < V * N, FMAs in key order from zero: V vectors of columns in registers (named, not an
// array: SVE) while the keys of one slot pass.
template <int V, class D, class T>
HWY_INLINE void SlotColumns(D d, const float* p, const T* v, size_t v_stride, size_t j, size_t j1,
                            size_t step, size_t c, float* acc) {
  static_assert(V == 1 || V == 4 || V == 8);
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (; j < j1; j += step) {
    const T* vr = v + j * v_stride + c;
    const auto pj = hn::Set(d, p[j]);
    a0 = hn::MulAdd(pj, LoadF32(d, vr), a0);
    if constexpr (V >= 4) {
      a1 = hn::MulAdd(pj, LoadF32(d, vr + N), a1);
      a2 = hn::MulAdd(pj, LoadF32(d, vr + 2 * N), a2);
      a3 = hn::MulAdd(pj, LoadF32(d, vr + 3 * N), a3);
    }
    if constexpr (V == 8) {
      a4 = hn::MulAdd(pj, LoadF32(d, vr + 4 * N), a4);
      a5 = hn::MulAdd(pj, LoadF32(d, vr + 5 * N), a5);
      a6 = hn::MulAdd(pj, LoadF32(d, vr + 6 * N), a6);
      a7 = hn::MulAdd(pj, LoadF32(d, vr + 7 * N), a7);
    }
  }
  hn::StoreU(a0, d, acc + c);
  if constexpr (V >= 4) {
    hn::StoreU(a1, d, acc + c + N);
    hn::StoreU(a2, d, acc + c + 2 * N);
    hn::StoreU(a3, d, acc + c + 3 * N);
  }
  if constexpr (V == 8) {
    hn::StoreU(a4, d, acc + c + 4 * N);
    hn::StoreU(a5, d, acc + c + 5 * N);
    hn::StoreU(a6, d, acc + c + 6 * N);
    hn::StoreU(a7, d, acc + c + 7 * N);
  }
}

template <class T>
HWY_INLINE void F16WeightedSumT(F16DotOrder order, const float* p, const T* v, size_t v_stride,
                                size_t j0, size_t j1, size_t hd, float* scratch, float* out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  // Key j adds into accumulator row j % slots (ggml's lane of j): each row is one slot's keys
  // summed in order, a row at a time, its columns in registers.
  const size_t slots = order == F16DotOrder::kTinyBlas ? 16 : 64;
  for (size_t slot = 0; slot < slots; ++slot) {
    float* acc = scratch + slot * hd;
    const size_t first = j0 + (slot + slots - j0 % slots) % slots;
    size_t c = 0;
    for (; c + 8 * N <= hd; c += 8 * N) SlotColumns<8>(d, p, v, v_stride, first, j1, slots, c, acc);
    for (; c + 4 * N <= hd; c += 4 * N) SlotColumns<4>(d, p, v, v_stride, first, j1, slots, c, acc);
    for (; c + N <= hd; c += N) SlotColumns<1>(d, p, v, v_stride, first, j1, slots, c, acc);
    for (; c < hd; ++c) {
      float a = 0.0f;
      for (size_t j = first; j < j1; j += slots) a = std::fma(p[j], ToF32(v[j * v_stride + c]), a);
      acc[c] = a;
    }
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
HWY_EXPORT(F16ScoreRows);
HWY_EXPORT(F16ScoreRowsF32);
HWY_EXPORT(F16WeightedSum);
HWY_EXPORT(F16WeightedSumHalf);

void f16_score_rows_simd(F16DotOrder order, const uint16_t* k, size_t k_stride, size_t j0,
                         size_t j1, const float* q, size_t hd, float scale, float* scores) {
  HWY_DYNAMIC_DISPATCH(F16ScoreRows)(order, k, k_stride, j0, j1, q, hd, scale, scores);
}
void f16_score_rows_simd(F16DotOrder order, const float* k, size_t k_stride, size_t j0, size_t j1,
                         const float* q, size_t hd, float scale, float* scores) {
  HWY_DYNAMIC_DISPATCH(F16ScoreRowsF32)(order, k, k_stride, j0, j1, q, hd, scale, scores);
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
