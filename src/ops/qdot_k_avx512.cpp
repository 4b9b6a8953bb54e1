// K-quant weights (Q4_K, Q5_K, Q6_K) x Q8_K activations on AVX-512 VNNI: the levels unpacked to
// unsigned bytes in 512-bit registers, vpdpbusd against the activations, each int32 lane
// multiplied by its sub-block's scale. Every sum is an exact integer (the mins' and Q6_K's
// -32 offsets come from the activations' 16-element sums), and the float combination per
// super-block is dot_k's own FMA chain: results are bit-identical to the scalar reference.
//
// Registers hold the levels in element order, 64 per register, so the activations are loaded as
// they are (the weights' unpacking is shared by several activation rows, theirs is not). Q4_K /
// Q5_K (8 sub-blocks of 32): register k is the low nibbles of qs[32k..32k+31] (sub-block 2k), then
// their high nibbles (2k + 1). Q6_K (16 sub-blocks of 16): ql[0..63]'s low nibbles are elements
// 0..63, its high nibbles 64..127, each completed by two bits of qh.
//
// A weight super-block is unpacked once and used for up to four activation rows (batches).
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops/kernel_tiling.h"
#include "ops/tensor_types.h"

namespace dip {
namespace {

constexpr size_t kActsPerPass = 4;

#include "ops/qdot_k_x86.inc"

// One super-block's weights, ready for any number of activation rows.
struct UnpackedK {
  __m512i q[4];       // unsigned levels, the layout above
  __m512i scale[4];   // per int32 lane of q[k]'s products: its sub-block's scale
  __m128i mins16;     // Q4_K/Q5_K: the eight mins as int16; Q6_K: scales 0..7 as int16
  __m128i mins16_hi;  // Q6_K: scales 8..15 as int16
  float d, dmin;
};

// Lanes 0..7 of the result: lane a of v; lanes 8..15: lane b.
DIP_INLINE __m512i pick(const __m512i& v, int a, int b) {
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b),
                                  v);
}

template <bool kQ5, class Block>
DIP_INLINE void unpack_q45(const Block& b, UnpackedK& u) {
  const __m128i sm = scales_and_mins(b.scales);
  const __m512i sm32 = _mm512_cvtepu8_epi32(sm);
  for (int k = 0; k < 4; ++k) u.scale[k] = pick(sm32, 2 * k, 2 * k + 1);
  u.mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
  u.d = _cvtsh_ss(b.d);
  u.dmin = _cvtsh_ss(b.dmin);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int k = 0; k < 4; ++k) {  // chunk k: elements 64k..64k+63, in element order
    const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * k));
    u.q[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(qs, low4)),
                                _mm256_and_si256(_mm256_srli_epi16(qs, 4), low4), 1);
  }
  if constexpr (kQ5) {
    // Fifth bits: bit 2k of qh[l] for the low nibbles of chunk k (element 64k + l), bit 2k + 1
    // for its high nibbles (element 64k + 32 + l): register k's two halves.
    const __m512i qh =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh)));
    const __m512i one = _mm512_set1_epi8(1);
    for (int k = 0; k < 4; ++k) {
      const long long lo_shift = 2 * k, hi_shift = 2 * k + 1;
      const __m512i counts = _mm512_setr_epi64(lo_shift, lo_shift, lo_shift, lo_shift, hi_shift,
                                               hi_shift, hi_shift, hi_shift);
      const __m512i bit = _mm512_and_si512(_mm512_srlv_epi64(qh, counts), one);
      u.q[k] = _mm512_or_si512(u.q[k], _mm512_slli_epi16(bit, 4));
    }
  }
}

DIP_INLINE void unpack_q6(const BlockQ6K& b, UnpackedK& u) {
  const __m512i sc32 =
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  for (int k = 0; k < 4; ++k) {
    const int s = 4 * k;
    u.scale[k] =
        _mm512_permutexvar_epi32(_mm512_setr_epi32(s, s, s, s, s + 1, s + 1, s + 1, s + 1, s + 2,
                                                   s + 2, s + 2, s + 2, s + 3, s + 3, s + 3, s + 3),
                                 sc32);
  }
  const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
  u.mins16 = _mm_cvtepi8_epi16(sc8);
  u.mins16_hi = _mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8));
  u.d = _cvtsh_ss(b.d);
  const __m512i low4 = _mm512_set1_epi8(0x0f), low2 = _mm512_set1_epi8(0x03);
  for (int h = 0; h < 2; ++h) {
    const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
    const __m512i qh =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h)));
    // Elements 0..63 of the half: bits 0-1 of qh (first 32), bits 2-3 (next 32); 64..127: bits
    // 4-5 and 6-7.
    for (int part = 0; part < 2; ++part) {
      const long long s0 = 4 * part, s1 = 4 * part + 2;
      const __m512i counts = _mm512_setr_epi64(s0, s0, s0, s0, s1, s1, s1, s1);
      const __m512i high =
          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, counts), low2), 4);
      const __m512i low =
          part == 0 ? _mm512_and_si512(ql, low4) : _mm512_and_si512(_mm512_srli_epi16(ql, 4), low4);
      u.q[2 * h + part] = _mm512_or_si512(low, high);
    }
  }
}

// Exact sum of the 16 int32 lanes.
DIP_INLINE int32_t hsum(__m512i v) {
  __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
  return _mm_cvtsi128_si32(t);
}

// sum(scale_j * sum(q a over sub-block j)) for the four registers against activations a[k].
DIP_INLINE int32_t scaled_sum(const UnpackedK& u, const __m512i* a) {
  __m512i acc = _mm512_setzero_si512();
  for (int k = 0; k < 4; ++k) {
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u.q[k], a[k]);
    acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(p, u.scale[k]));
  }
  return hsum(acc);
}

template <TensorType kType>
DIP_INLINE float accumulate(const UnpackedK& u, const BlockQ8K& a, float sum) {
  const __m512i* q8 = reinterpret_cast<const __m512i*>(a.qs);
  __m512i av[4];
  for (int k = 0; k < 4; ++k) av[k] = _mm512_loadu_si512(q8 + k);  // elements 64k..64k+63
  return combine_k<kType>(scaled_sum(u, av), u, a, sum);
}

#include "ops/qdot_k_x86_rows.inc"

// row_pass for a run-time count na <= kMax of activation rows.
template <TensorType kType, size_t kMax>
void row_pass_n(size_t na, const uint8_t* wr, size_t nb, const uint8_t* acts, size_t arow_bytes,
                float* out, size_t y_stride) {
  if constexpr (kMax == 1) {
    row_pass<kType, 1>(wr, nb, acts, arow_bytes, out, y_stride);
  } else if (na == kMax) {
    row_pass<kType, kMax>(wr, nb, acts, arow_bytes, out, y_stride);
  } else {
    row_pass_n<kType, kMax - 1>(na, wr, nb, acts, arow_bytes, out, y_stride);
  }
}

template <TensorType kType>
void rows(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts, size_t arow_bytes,
          size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  const size_t nb = n / kQK_K;
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* wr = w + r * wrow_bytes;
    for (size_t b0 = 0; b0 < n_act; b0 += kActsPerPass) {
      const uint8_t* a = acts + b0 * arow_bytes;
      float* out = y + b0 * y_stride + r;
      row_pass_n<kType, kActsPerPass>(std::min(kActsPerPass, n_act - b0), wr, nb, a, arow_bytes,
                                      out, y_stride);
    }
  }
}

}  // namespace

void kmatmul_avx512(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                    const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                    size_t r0, size_t r1) {
  switch (wt) {
    case TensorType::Q4_K:
      return rows<TensorType::Q4_K>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
    case TensorType::Q5_K:
      return rows<TensorType::Q5_K>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
    case TensorType::Q6_K:
      return rows<TensorType::Q6_K>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
    default:
      return;
  }
}

}  // namespace dip
#endif
