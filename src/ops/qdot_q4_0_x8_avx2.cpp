// Q4_0 weights repacked eight rows at a time (repack_x8.h) x Q8_0 activations on AVX2, in the
// order of llama.cpp's repacked Q4_0 kernels: per (row, activation) and block in order,
// acc = fma(float(exact integer sum of the block), dw * da, acc). Each 32-byte load holds four
// quants of each of the eight rows, one per 32-bit lane, so the activation's matching four
// bytes are one broadcast and eight rows' block sums build up in their own lanes: no
// horizontal reduction, one FMA per block for eight rows, one sequential stream from memory.
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ops/kernel_tiling.h"
#include "ops/quant.h"
#include "ops/repack_x8.h"
#include "ops/tensor_types.h"

namespace dip {
namespace {

// The activations as the encoder left them (Q8_0 rows, quants read in place: one broadcast of
// four bytes per load) and their per-block sums and scales.
constexpr size_t kUnit = 8 * sizeof(BlockQ4_0);

struct PreparedActs : Q4ActSums {
  const uint8_t* rows = nullptr;
  size_t row_bytes = 0;
  void prepare(const uint8_t* acts, size_t arb, size_t n_act, size_t n_blocks) {
    compute(acts, arb, n_act, n_blocks);
    rows = acts;
    row_bytes = arb;
  }
  const int8_t* quants(size_t t, size_t b) const {
    return reinterpret_cast<const BlockQ8_0*>(rows + t * row_bytes)[b].qs;
  }
};

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// One group of eight rows against T activations (t0 ..), all blocks; y[t * ys + row0 + lane].
template <int T>
void group_tile(const uint8_t* group, const PreparedActs& pa, size_t t0, float* y, size_t ys,
                size_t row0) {
  const size_t nb = pa.nb;
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* blk = group + b * kUnit;
    if (T == 1) {
      _mm_prefetch(reinterpret_cast<const char*>(blk) + kWeightPrefetchBytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(blk) + kWeightPrefetchBytes + 64, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(blk) + kWeightPrefetchBytes + 128, _MM_HINT_T0);
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    __m256i w[8];  // w[k]: elements 4k .. 4k + 3 of every row, unsigned nibbles
    for (int j = 0; j < 4; ++j) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * j));
      w[j] = _mm256_and_si256(c, low4);
      w[j + 4] = _mm256_and_si256(_mm256_srli_epi16(c, 4), low4);
    }
    for (int t = 0; t < T; ++t) {
      const size_t i = (t0 + t) * nb + b;
      const int8_t* a = pa.quants(t0 + t, b);
      // Eight products of pairs per int16 lane: |sum| <= 8 * 2 * 15 * 127 < 32768, exact.
      __m256i s16 = _mm256_maddubs_epi16(w[0], bcast4(a));
      for (int k = 1; k < 8; ++k)
        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[k], bcast4(a + 4 * k)));
      const __m256i isum =
          _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), _mm256_set1_epi32(pa.off8[i]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(pa.d[i])),
                               acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(y + (t0 + t) * ys + row0, acc[t]);
}

}  // namespace

void qmatmul_q4_0_x8_avx2(const uint8_t* packed, size_t n, const uint8_t* acts, size_t arow_bytes,
                          size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  if (r0 >= r1) return;
  const size_t nb = n / kQK8_0;
  thread_local PreparedActs prep;
  prep.prepare(acts, arow_bytes, n_act, nb);
  const size_t group_bytes = nb * kUnit;
  auto group = [&](size_t r) { return packed + (r / 8) * group_bytes; };
  for_each_group_tile(
      n_act, r0, r1, [&](size_t t, size_t r) { group_tile<4>(group(r), prep, t, y, y_stride, r); },
      [&](size_t t, size_t r) { group_tile<1>(group(r), prep, t, y, y_stride, r); });
}

}  // namespace dip
#endif
