// The x86 quantized kernels on 512-bit vectors (AVX-512 F/BW/VL + VNNI): two 32-element blocks
// per register, so every instruction of the inner loop does twice the work of the 256-bit
// kernels (qdot_x86_kernels.inc). Compiled with its own target flags, called only after a
// CPUID check.
//
// Both weight types are turned into one form, u8 x s8 with a per-lane offset, so the inner
// loop is the same four instructions for each (weight row, activation row, block pair):
//   s   = offset + dpbusd(u, a)          exact int32 sums of 4 products per lane
//   acc = fma(cvt(s), dw * da, acc)      the pair's scales, 8 lanes per block
// where a is the activation's signed quants and u the weight's quants made unsigned:
//   Q4_0: u = the nibble (0..15),  w = u - 8,   so sum(w a) = sum(u a) - 8 sum(a)
//   Q8_0: u = w + 128 (xor 0x80),              so sum(w a) = sum(u a) - 128 sum(a)
// The offsets -8 sum(a) / -128 sum(a) per 4-element lane depend only on the activation and are
// computed once per call (they seed dpbusd's accumulator, so they cost nothing per row).
// Integer parts are exact; the float sums differ from the 256-bit kernels only in order.
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/kernel_tiling.h"
#include "ops/tensor_types.h"

namespace dip {
namespace {

// One activation row, unpacked once per call for every weight row that meets it: per block
// pair (blocks 2p and 2p+1; a missing last block is zeros) the 64 quants, the two scales
// (eight lanes each) and the per-lane offsets.
struct ActPair {
  __m512i q, off;
  __m512 d;
};

struct PreparedActsZ {
  std::vector<ActPair> pairs;
  size_t n_pairs = 0;
  void prepare(bool q4, const uint8_t* acts, size_t arb, size_t n_act, size_t nb) {
    n_pairs = (nb + 1) / 2;
    pairs.resize(n_act * n_pairs);
    const __m512i k = _mm512_set1_epi8(q4 ? 8 : char(-128));  // -8 / -128 per weight: unsigned 8 / 128
    for (size_t t = 0; t < n_act; ++t) {
      const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(acts + t * arb);
      for (size_t p = 0; p < n_pairs; ++p) {
        const bool two = 2 * p + 1 < nb;
        const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[2 * p].qs));
        const __m256i q1 = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[2 * p + 1].qs))
                               : _mm256_setzero_si256();
        const __m512i qv = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
        ActPair& ap = pairs[t * n_pairs + p];
        ap.q = qv;
        // dpbusd(8 or 128 as unsigned bytes, a) = 8 or 128 times each lane's sum of a.
        ap.off = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), k, qv));
        const float d0 = _cvtsh_ss(a[2 * p].d), d1 = two ? _cvtsh_ss(a[2 * p + 1].d) : 0.0f;
        ap.d = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(d0)),
                                                   _mm256_castps_pd(_mm256_set1_ps(d1)), 1));
      }
    }
  }
};

// Two fp16 block scales as [d0 x 8, d1 x 8]. A missing second block gets scale 0 (its quants
// meet zero activations anyway).
inline __m512 pair_scales(uint16_t d0, uint16_t d1) {
  return _mm512_cvtph_ps(
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(short(d0))), _mm_set1_epi16(short(d1)), 1));
}

// Weight row `row`, block pair p: the unsigned quants in activation order and the scales.
template <bool kQ4, bool kTwo>
inline void load_weight_pair(const uint8_t* row, size_t p, __m512i& u, __m512& dw) {
  if constexpr (kQ4) {
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(row) + 2 * p;
    const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[0].qs));
    const __m128i r1 = kTwo ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[1].qs)) : _mm_setzero_si128();
    // qs[j] holds element j (low nibble) and j + 16 (high): lanes [r0 lo, r0 hi, r1 lo, r1 hi].
    // (One masked 36-byte load with vpermb/vpermw instead of these was slower on Sapphire Rapids.)
    const __m256i raw = _mm256_inserti128_si256(_mm256_castsi128_si256(r0), r1, 1);
    const __m256i high = _mm256_srli_epi16(raw, 4);
    const __m512i idx = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    u = _mm512_and_si512(_mm512_permutex2var_epi64(_mm512_castsi256_si512(raw), idx, _mm512_castsi256_si512(high)),
                         _mm512_set1_epi8(0x0f));
    dw = pair_scales(b[0].d, kTwo ? b[1].d : 0);
  } else {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + 2 * p;
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs));
    const __m256i w1 = kTwo ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)) : _mm256_setzero_si256();
    u = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1), _mm512_set1_epi8(char(0x80)));
    dw = pair_scales(b[0].d, kTwo ? b[1].d : 0);
  }
}

// R weight rows x T activation rows over all blocks; writes y[t * ys + row + r]. With one
// row and one activation, alternate pairs go to two accumulators (the FMA latency chain).
template <bool kQ4, int R, int T>
void tile(const uint8_t* w, size_t wrb, size_t nb, const PreparedActsZ& pa, size_t t0, float* y, size_t ys,
          size_t row) {
  constexpr int kChains = R * T == 1 ? 2 : 1;
  constexpr size_t kPairBytes = 2 * (kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0));
  __m512 acc[kChains][R][T];
  for (int c = 0; c < kChains; ++c)
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[c][r][t] = _mm512_setzero_ps();
  const size_t np = pa.n_pairs;
  auto pair = [&](size_t p, auto two, __m512 (&a)[R][T]) {
    __m512i u[R];
    __m512 dw[R];
    if constexpr (T == 1) {
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(w + (row + r) * wrb + p * kPairBytes + kWeightPrefetchBytes), _MM_HINT_T0);
      }
    }
    for (int r = 0; r < R; ++r) load_weight_pair<kQ4, decltype(two)::value>(w + (row + r) * wrb, p, u[r], dw[r]);
    for (int t = 0; t < T; ++t) {
      const ActPair& ap = pa.pairs[(t0 + t) * np + p];
      const __m512i av = ap.q, off = ap.off;
      const __m512 da = ap.d;
      for (int r = 0; r < R; ++r) {
        const __m512i s = _mm512_dpbusd_epi32(off, u[r], av);
        a[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw[r], da), a[r][t]);
      }
    }
  };
  const size_t full = nb / 2;  // pairs with both blocks present
  size_t p = 0;
  if constexpr (kChains == 2) {
    for (; p + 2 <= full; p += 2) {
      pair(p, std::true_type{}, acc[0]);
      pair(p + 1, std::true_type{}, acc[kChains - 1]);
    }
  }
  for (; p < full; ++p) pair(p, std::true_type{}, acc[0]);
  if (nb % 2) pair(full, std::false_type{}, acc[0]);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      __m512 sum = acc[0][r][t];
      if constexpr (kChains == 2) sum = _mm512_add_ps(sum, acc[1][r][t]);
      y[t * ys + row + r] = _mm512_reduce_add_ps(sum);
    }
}

template <bool kQ4, int T>
void rows_for_acts(const uint8_t* w, size_t wrb, size_t nb, const PreparedActsZ& pa, size_t t0, float* y, size_t ys,
                   size_t r0, size_t r1) {
  size_t r = r0;
  if constexpr (T > 1)
    for (; r + 4 <= r1; r += 4) tile<kQ4, 4, T>(w, wrb, nb, pa, t0, y, ys, r);
  for (; r < r1; ++r) tile<kQ4, 1, T>(w, wrb, nb, pa, t0, y, ys, r);
}

template <bool kQ4>
void qmatmul(const uint8_t* w, size_t wrb, size_t nb, const uint8_t* acts, size_t arb, size_t n_act, float* y,
             size_t ys, size_t r0, size_t r1) {
  thread_local PreparedActsZ prep;
  prep.prepare(kQ4, acts, arb, n_act, nb);
  if (n_act == 1) {
    rows_for_acts<kQ4, 1>(w, wrb, nb, prep, 0, y, ys, r0, r1);
    return;
  }
  for_each_act_tile(
      n_act, r0, r1, 32, 64,
      [&](size_t t, size_t rr, size_t re) { rows_for_acts<kQ4, 4>(w, wrb, nb, prep, t, y + t * ys, ys, rr, re); },
      [&](size_t t, size_t rr, size_t re) { rows_for_acts<kQ4, 1>(w, wrb, nb, prep, t, y + t * ys, ys, rr, re); });
}

}  // namespace

void qmatmul_avx512(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                    size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  const size_t nb = n / kQK8_0;
  if (wt == TensorType::Q4_0) {
    qmatmul<true>(w, wrow_bytes, nb, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else {
    qmatmul<false>(w, wrow_bytes, nb, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  }
}

}  // namespace dip
#endif
