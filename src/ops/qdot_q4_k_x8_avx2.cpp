// Q4_K weights repacked eight rows at a time (repack_x8.h) x Q8_K activations on AVX2, in
// dot_k's order: per (row, activation) and super-block in order,
// acc = fma(d * da, float(isum), fma(-(dmin * da), float(msum), acc)) with isum and msum exact
// integers, so results equal the scalar reference and the GGUF-layout kernels bit for bit.
// Each 32-byte load holds four quants of each of the eight rows, one per 32-bit lane: the
// activation's matching four bytes are one broadcast, eight rows' sums build up in their own
// lanes (no horizontal sums), the scales multiply eight rows at once, and the super-block's
// unpacked scales serve up to four activation rows.
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ops/kernel_tiling.h"
#include "ops/repack_x8.h"
#include "ops/tensor_types.h"

namespace dip {
namespace {

constexpr size_t kUnit = 8 * sizeof(BlockQ4K);

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

inline __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// A super-block's scales and mins, unpacked from the 96 bytes (layout in repack_x8.h).
struct UnitScales {
  __m256i scale[8];  // sub-block j: int16 lanes (scale of row r, same) in 32-bit lane r
  __m256i mins[4];   // pair p: int16 lanes (min of sub-block 2p, of 2p + 1) in 32-bit lane r
};

inline void unpack_scales(const uint8_t* p, UnitScales& u) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
  const __m256i l0 = load32(p), l1 = load32(p + 32), h = load32(p + 64);
  const __m256i s0 = _mm256_or_si256(_mm256_and_si256(l0, low4),
                                     _mm256_and_si256(_mm256_slli_epi16(h, 4), bits45));
  const __m256i s1 = _mm256_or_si256(_mm256_and_si256(l1, low4),
                                     _mm256_and_si256(_mm256_slli_epi16(h, 2), bits45));
  const __m256i m0 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                                     _mm256_and_si256(h, bits45));
  const __m256i m1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                                     _mm256_and_si256(_mm256_srli_epi16(h, 2), bits45));
  const __m128i s[4] = {_mm256_castsi256_si128(s0), _mm256_extracti128_si256(s0, 1),
                        _mm256_castsi256_si128(s1), _mm256_extracti128_si256(s1, 1)};
  for (int q = 0; q < 4; ++q) {  // bytes 8j .. 8j + 7: sub-block j's eight rows, doubled
    u.scale[2 * q] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(s[q], s[q]));
    u.scale[2 * q + 1] = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(s[q], s[q]));
  }
  u.mins[0] = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(m0));
  u.mins[1] = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(m0, 1));
  u.mins[2] = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(m1));
  u.mins[3] = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(m1, 1));
}

// sum over sub-blocks j of min_j * (sum of the activation's 32 quants of sub-block j), exactly,
// per row lane: the activation's sums of 16 added in pairs, each pair of sub-blocks one madd.
inline __m256i mins_sum(const UnitScales& u, const BlockQ8K& a) {
  const __m256i bs = load32(reinterpret_cast<const uint8_t*>(a.bsums));
  // 32-bit lanes 0, 1 (low half): sums of sub-blocks (0, 1), (2, 3); 4, 5: (4, 5), (6, 7).
  const __m256i pairs = _mm256_hadd_epi16(bs, bs);
  __m256i m =
      _mm256_madd_epi16(u.mins[0], _mm256_permutevar8x32_epi32(pairs, _mm256_set1_epi32(0)));
  m = _mm256_add_epi32(
      m, _mm256_madd_epi16(u.mins[1], _mm256_permutevar8x32_epi32(pairs, _mm256_set1_epi32(1))));
  m = _mm256_add_epi32(
      m, _mm256_madd_epi16(u.mins[2], _mm256_permutevar8x32_epi32(pairs, _mm256_set1_epi32(4))));
  return _mm256_add_epi32(
      m, _mm256_madd_epi16(u.mins[3], _mm256_permutevar8x32_epi32(pairs, _mm256_set1_epi32(5))));
}

// One group of eight rows against T activations (t0 ..), all super-blocks;
// y[t * ys + row0 + lane].
template <int T>
void group_tile(const uint8_t* group, size_t nb, const uint8_t* acts, size_t arb, size_t t0,
                float* y, size_t ys, size_t row0) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  UnitScales u;
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* unit = group + b * kUnit;
    if (T == 1) {
      const char* next = reinterpret_cast<const char*>(unit) + kWeightPrefetchBytes;
      for (size_t line = 0; line < kUnit; line += 64) _mm_prefetch(next + line, _MM_HINT_T0);
    }
    const BlockQ8K* a[T];
    for (int t = 0; t < T; ++t) a[t] = reinterpret_cast<const BlockQ8K*>(acts + (t0 + t) * arb) + b;
    unpack_scales(unit + 32, u);
    __m256i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
    const uint8_t* qs = unit + 128;
    for (int k = 0; k < 4; ++k) {
      // Sub-blocks 2k (low nibbles) and 2k + 1 (high): eight products of pairs per int16 lane,
      // |sum| <= 8 * 2 * 15 * 128 < 32768, exact.
      __m256i lo[T], hi[T];
      for (int t = 0; t < T; ++t) lo[t] = hi[t] = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j) {
        const __m256i c = load32(qs + 32 * (8 * k + j));
        const __m256i wl = _mm256_and_si256(c, low4);
        const __m256i wh = _mm256_and_si256(_mm256_srli_epi16(c, 4), low4);
        for (int t = 0; t < T; ++t) {
          lo[t] =
              _mm256_add_epi16(lo[t], _mm256_maddubs_epi16(wl, bcast4(a[t]->qs + 64 * k + 4 * j)));
          hi[t] = _mm256_add_epi16(
              hi[t], _mm256_maddubs_epi16(wh, bcast4(a[t]->qs + 64 * k + 32 + 4 * j)));
        }
      }
      for (int t = 0; t < T; ++t)
        isum[t] = _mm256_add_epi32(isum[t],
                                   _mm256_add_epi32(_mm256_madd_epi16(lo[t], u.scale[2 * k]),
                                                    _mm256_madd_epi16(hi[t], u.scale[2 * k + 1])));
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(unit)));
    const __m256 dmin =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(unit + 16)));
    for (int t = 0; t < T; ++t) {
      const __m256 da = _mm256_set1_ps(a[t]->d);
      const __m256 msum = _mm256_cvtepi32_ps(mins_sum(u, *a[t]));
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, da), _mm256_cvtepi32_ps(isum[t]),
                               _mm256_fnmadd_ps(_mm256_mul_ps(dmin, da), msum, acc[t]));
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(y + (t0 + t) * ys + row0, acc[t]);
}

}  // namespace

void qmatmul_q4_k_x8_avx2(const uint8_t* packed, size_t n, const uint8_t* acts, size_t arow_bytes,
                          size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  if (r0 >= r1) return;
  const size_t nb = n / kQK_K, group_bytes = nb * kUnit;
  auto group = [&](size_t r) { return packed + (r / 8) * group_bytes; };
  for_each_group_tile(
      n_act, r0, r1,
      [&](size_t t, size_t r) { group_tile<4>(group(r), nb, acts, arow_bytes, t, y, y_stride, r); },
      [&](size_t t, size_t r) {
        group_tile<1>(group(r), nb, acts, arow_bytes, t, y, y_stride, r);
      });
}

}  // namespace dip
#endif
