// K-quant weights (Q2_K ... Q6_K) x Q8_K activations on AVX2, for x86 CPUs without AVX-512 VNNI
// (and for Q2_K and Q3_K on every x86 CPU). Each 32-byte register holds 32 consecutive levels
// (unsigned: Q4_K 0..15, Q5_K 0..31, Q6_K 0..63, stored + 32); vpmaddubsw against the activations
// gives int16 pair sums (at most 2 x 63 x 128, no saturation) and vpmaddwd multiplies them by the
// sub-block's scale and adds pairs to int32. Every sum is an exact integer (the mins' and Q6_K's
// -32 offsets come from the activations' 16-element sums), and the float combination per
// super-block is dot_k's own FMA chain: results are bit-identical to the scalar reference and to
// the AVX-512 kernel.
//
// Register g (0..7) holds elements 32g..32g+31. Q4_K/Q5_K: that is sub-block g, the low nibbles
// of qs[32k..32k+31] for g = 2k and their high nibbles for g = 2k + 1. Q6_K: sub-blocks 2g and
// 2g + 1 (16 each, one per 128-bit half); in half h of the block (elements 128h..), g = 4h + p
// takes ql[64h + 32(p & 1) + l]'s low (p < 2) or high nibble and bits 2p, 2p + 1 of qh[32h + l].
//
// A weight super-block is unpacked once and used for up to four activation rows; batches visit
// tiles in for_each_act_tile's cache-friendly order.
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops/kernel_tiling.h"
#include "ops/tensor_types.h"

namespace dip {
namespace {

#include "ops/qdot_k_x86.inc"

struct UnpackedK {
  __m256i q[8];       // unsigned levels, register g = elements 32g..32g+31
  __m256i scale[8];   // int16 lanes: the scale of the sub-block each pair of products falls in
  __m128i mins16;     // Q4_K/Q5_K: the eight mins as int16; Q6_K: scales 0..7 as int16
  __m128i mins16_hi;  // Q6_K: scales 8..15 as int16
  float d, dmin;
};

// int16 word `lo` of `words` in lanes 0..7, word `hi` in lanes 8..15 (words: 8 int16, both
// 128-bit halves).
DIP_INLINE __m256i pick_words(const __m256i& words, int lo, int hi) {
  const __m256i ctrl = _mm256_setr_epi8(
      char(2 * lo), char(2 * lo + 1), char(2 * lo), char(2 * lo + 1), char(2 * lo),
      char(2 * lo + 1), char(2 * lo), char(2 * lo + 1), char(2 * lo), char(2 * lo + 1),
      char(2 * lo), char(2 * lo + 1), char(2 * lo), char(2 * lo + 1), char(2 * lo),
      char(2 * lo + 1), char(2 * hi), char(2 * hi + 1), char(2 * hi), char(2 * hi + 1),
      char(2 * hi), char(2 * hi + 1), char(2 * hi), char(2 * hi + 1), char(2 * hi),
      char(2 * hi + 1), char(2 * hi), char(2 * hi + 1), char(2 * hi), char(2 * hi + 1),
      char(2 * hi), char(2 * hi + 1));
  return _mm256_shuffle_epi8(words, ctrl);
}

DIP_INLINE __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

template <bool kQ5, class Block>
DIP_INLINE void unpack_q45(const Block& b, UnpackedK& u) {
  const __m128i sm = scales_and_mins(b.scales);
  const __m256i scales16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
  for (int g = 0; g < 8; ++g) u.scale[g] = pick_words(scales16, g, g);
  u.mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
  u.d = _cvtsh_ss(b.d);
  u.dmin = _cvtsh_ss(b.dmin);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int k = 0; k < 4; ++k) {
    const __m256i qs = load32(b.qs + 32 * k);
    u.q[2 * k] = _mm256_and_si256(qs, low4);
    u.q[2 * k + 1] = _mm256_and_si256(_mm256_srli_epi16(qs, 4), low4);
  }
  if constexpr (kQ5) {
    // Fifth bits: bit g of qh[l] for element 32g + l. The bit is isolated within its byte
    // before the shift left by 4, so no bit crosses into the neighbouring byte.
    const __m256i qh = load32(b.qh);
    const __m256i one = _mm256_set1_epi8(1);
    for (int g = 0; g < 8; ++g) {
      const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(g)), one);
      u.q[g] = _mm256_or_si256(u.q[g], _mm256_slli_epi16(bit, 4));
    }
  }
}

DIP_INLINE void unpack_q6(const BlockQ6K& b, UnpackedK& u) {
  const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
  u.mins16 = _mm_cvtepi8_epi16(sc8);
  u.mins16_hi = _mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8));
  const __m256i lo16 = _mm256_broadcastsi128_si256(u.mins16);
  const __m256i hi16 = _mm256_broadcastsi128_si256(u.mins16_hi);
  for (int g = 0; g < 4; ++g) {
    u.scale[g] = pick_words(lo16, 2 * g, 2 * g + 1);
    u.scale[g + 4] = pick_words(hi16, 2 * g, 2 * g + 1);
  }
  u.d = _cvtsh_ss(b.d);
  const __m256i low4 = _mm256_set1_epi8(0x0f), low2 = _mm256_set1_epi8(0x03);
  for (int h = 0; h < 2; ++h) {
    const __m256i ql0 = load32(b.ql + 64 * h), ql1 = load32(b.ql + 64 * h + 32);
    const __m256i qh = load32(b.qh + 32 * h);
    for (int p = 0; p < 4; ++p) {
      const __m256i ql = (p & 1) ? ql1 : ql0;
      const __m256i low =
          p < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
      const __m256i high = _mm256_slli_epi16(
          _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * p)), low2), 4);
      u.q[4 * h + p] = _mm256_or_si256(low, high);
    }
  }
}

// Q2_K / Q3_K: register g = 4h + k holds bits 2k of qs[32h .. 32h + 31] (elements 128h + 32k ..);
// Q3_K adds its third bit, bit g of hmask[l], so the level is stored + 4 (0..7). Sub-blocks 2g
// and 2g + 1 are the register's halves, as Q6_K's. Q2_K's scales are the low nibbles of
// scales[j] and its mins the high ones; Q3_K's 6-bit scales as q3k_scale unpacks them.
template <class Block>
DIP_INLINE void unpack_q23(const Block& b, UnpackedK& u) {
  constexpr bool kQ3 = std::is_same_v<Block, BlockQ3K>;
  __m128i sc8;  // the sixteen scales as int8
  if constexpr (kQ3) {
    // In general-purpose registers, then into the vector with inserts (storing the words and
    // loading them as one vector stalled on store forwarding: a quarter of the kernel's time).
    uint32_t w0, w1, high;
    std::memcpy(&w0, b.scales, 4);
    std::memcpy(&w1, b.scales + 4, 4);
    std::memcpy(&high, b.scales + 8, 4);
    constexpr uint32_t kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
    const __m128i words = _mm_setr_epi32(int((w0 & kLow4) | ((high & kLow2) << 4)),
                                         int((w1 & kLow4) | (((high >> 2) & kLow2) << 4)),
                                         int(((w0 >> 4) & kLow4) | (((high >> 4) & kLow2) << 4)),
                                         int(((w1 >> 4) & kLow4) | (((high >> 6) & kLow2) << 4)));
    sc8 = _mm_sub_epi8(words, _mm_set1_epi8(32));
    u.mins16 = _mm_cvtepi8_epi16(sc8);
    u.mins16_hi = _mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8));
  } else {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i low4 = _mm_set1_epi8(0x0f);
    sc8 = _mm_and_si128(packed, low4);
    const __m128i mins8 = _mm_and_si128(_mm_srli_epi16(packed, 4), low4);
    u.mins16 = _mm_cvtepu8_epi16(mins8);
    u.mins16_hi = _mm_cvtepu8_epi16(_mm_srli_si128(mins8, 8));
    u.dmin = _cvtsh_ss(b.dmin);
  }
  const __m256i lo16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc8));
  const __m256i hi16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8)));
  for (int g = 0; g < 4; ++g) {
    u.scale[g] = pick_words(lo16, 2 * g, 2 * g + 1);
    u.scale[g + 4] = pick_words(hi16, 2 * g, 2 * g + 1);
  }
  u.d = _cvtsh_ss(b.d);
  const __m256i low2 = _mm256_set1_epi8(0x03), one = _mm256_set1_epi8(1);
  __m256i hm;
  if constexpr (kQ3) hm = load32(b.hmask);
  for (int h = 0; h < 2; ++h) {
    const __m256i qs = load32(b.qs + 32 * h);
    for (int k = 0; k < 4; ++k) {
      const int g = 4 * h + k;
      u.q[g] = _mm256_and_si256(_mm256_srl_epi16(qs, _mm_cvtsi32_si128(2 * k)), low2);
      if constexpr (kQ3) {
        // The bit is isolated within its byte before the shift left by 2.
        const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(g)), one);
        u.q[g] = _mm256_or_si256(u.q[g], _mm256_slli_epi16(bit, 2));
      }
    }
  }
}

DIP_INLINE int32_t hsum(__m256i v) {
  return hsum(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

// sum over the super-block of scale(sub-block) * q * a, exactly.
DIP_INLINE int32_t scaled_sum(const UnpackedK& u, const int8_t* qs) {
  __m256i acc = _mm256_setzero_si256();
  for (int g = 0; g < 8; ++g) {
    const __m256i pairs =
        _mm256_maddubs_epi16(u.q[g], load32(reinterpret_cast<const uint8_t*>(qs) + 32 * g));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, u.scale[g]));
  }
  return hsum(acc);
}

template <TensorType kType>
DIP_INLINE float accumulate(const UnpackedK& u, const BlockQ8K& a, float sum) {
  return combine_k<kType>(scaled_sum(u, a.qs), u, a, sum);
}

#include "ops/qdot_k_x86_rows.inc"

// Weight rows [r0, r1) against kActs activation rows: y[k * y_stride + r] = the dot product of
// row r with activation row k.
template <TensorType kType, size_t kActs>
void rows_for_acts(const uint8_t* w, size_t wrow_bytes, size_t nb, const uint8_t* acts,
                   size_t arow_bytes, float* y, size_t y_stride, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r)
    row_pass<kType, kActs>(w + r * wrow_bytes, nb, acts, arow_bytes, y + r, y_stride);
}

template <TensorType kType>
void kmatmul(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts, size_t arow_bytes,
             size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  const size_t nb = n / kQK_K;
  if (n_act == 1) {
    rows_for_acts<kType, 1>(w, wrow_bytes, nb, acts, arow_bytes, y, y_stride, r0, r1);
    return;
  }
  for_each_act_tile(
      n_act, r0, r1, 32, 64,
      [&](size_t t, size_t rr, size_t re) {
        rows_for_acts<kType, 4>(w, wrow_bytes, nb, acts + t * arow_bytes, arow_bytes,
                                y + t * y_stride, y_stride, rr, re);
      },
      [&](size_t t, size_t rr, size_t re) {
        rows_for_acts<kType, 1>(w, wrow_bytes, nb, acts + t * arow_bytes, arow_bytes,
                                y + t * y_stride, y_stride, rr, re);
      });
}

}  // namespace

void kmatmul_avx2(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                  size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                  size_t r1) {
  switch (wt) {
    case TensorType::Q2_K:
      return kmatmul<TensorType::Q2_K>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0,
                                       r1);
    case TensorType::Q3_K:
      return kmatmul<TensorType::Q3_K>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0,
                                       r1);
    case TensorType::Q4_K:
      return kmatmul<TensorType::Q4_K>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0,
                                       r1);
    case TensorType::Q5_K:
      return kmatmul<TensorType::Q5_K>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0,
                                       r1);
    case TensorType::Q6_K:
      return kmatmul<TensorType::Q6_K>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0,
                                       r1);
    default:
      return;
  }
}

}  // namespace dip
#endif
