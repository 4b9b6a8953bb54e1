// Q4_0 column-sparse product in int8 (AVX-512 VNNI + VBMI), sixteen kept columns at a time.
//
// Why: the float kernel (colsparse.cpp) turns every nibble into a float and needs one FMA per
// kept weight; it is compute-bound at about half the memory bandwidth. Here, per output block
// (32 outputs) the sixteen columns' coefficients x[c] * d[c] are rounded to int8 with one shared
// scale (as llama.cpp rounds activations to Q8_0 before its integer dot products), the nibbles
// of four columns are interleaved per output with one vpermb, and vpdpbusd multiplies and sums
// four columns per instruction. One conversion and one FMA per output then serve 16 columns.
// Highway 1.0.3 has no op for vpdpbusd or vpermb (and its AVX3_DL target string lacks
// avx512vnni), so this file is compiled with its own flags and runs after a CPUID check.
#include <algorithm>
#include <cstddef>

#include "ops/colsparse_q4_int8.h"

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include "ops/qdot_x86.h"
#include "ops/tensor_types.h"

namespace dip {

bool colsparse_q4_vnni_available() {
  // The 512-bit VNNI set the dense int8 kernels need (F16C, AVX-512 BW/VL/VNNI), plus vpermb.
  static const bool ok =
      qdot_x86_available(QdotIsa::kAvx512Vnni) && __builtin_cpu_supports("avx512vbmi");
  return ok;
}

namespace {
// Byte 4*i + m of an interleaved vector is item i of column m: source byte 16*m + i.
struct InterleaveFour {
  alignas(64) uint8_t bytes[64];
  constexpr InterleaveFour() : bytes() {
    for (int i = 0; i < 16; ++i) {
      for (int m = 0; m < 4; ++m) bytes[4 * i + m] = uint8_t(16 * m + i);
    }
  }
};
constexpr InterleaveFour kInterleaveFour;
}  // namespace

void colsparse_q4_vnni16(const uint8_t* const* col, const float* x, float* y, size_t b0,
                         size_t b1) {
  constexpr size_t kBlock = sizeof(BlockQ4_0);
  constexpr size_t kChunk = 16;   // blocks whose scales are prepared together, one per lane
  constexpr size_t kAhead = 768;  // software prefetch distance inside each column (short streams)
  const __m512i perm = _mm512_load_si512(kInterleaveFour.bytes);
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  const __m512i block_stride =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(int(kBlock)));
  const uint8_t* qs[16];
  for (int c = 0; c < 16; ++c) qs[c] = col[c] + offsetof(BlockQ4_0, qs);

  // Per chunk, lane j of each vector is block b + j: the scales are reduced over the sixteen
  // columns vertically (a horizontal reduction per block would serialise the loop).
  alignas(64) int32_t k4[4][kChunk];   // k[4g .. 4g+3] of block j as four int8 in one dword
  alignas(64) int32_t offset[kChunk];  // -8 * sum of k[c] (the nibbles' bias of 8)
  alignas(64) float scale[kChunk];     // amax / 127
  for (size_t b = b0; b < b1; b += kChunk) {
    const size_t nb = std::min(kChunk, b1 - b);
    const __mmask16 live = nb == kChunk ? __mmask16(0xffff) : __mmask16((1u << nb) - 1);
    __m512 coef[16];
    __m512 amax = _mm512_setzero_ps();
    for (int c = 0; c < 16; ++c) {
      // 4 bytes at each block's start: its fp16 scale and two bytes of nibbles (dropped).
      const __m512i raw = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, block_stride,
                                                      col[c] + b * kBlock, 1);
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
      coef[c] = _mm512_mul_ps(d, _mm512_set1_ps(x[c]));
      amax = _mm512_max_ps(amax, _mm512_abs_ps(coef[c]));
    }
    const __mmask16 nonzero = _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_GT_OQ);
    const __m512 inv = _mm512_maskz_div_ps(nonzero, _mm512_set1_ps(127.0f), amax);
    _mm512_store_ps(scale, _mm512_div_ps(amax, _mm512_set1_ps(127.0f)));
    __m512i ksum = _mm512_setzero_si512();
    __m128i k8[16];
    for (int c = 0; c < 16; ++c) {
      const __m512i k = _mm512_cvtps_epi32(_mm512_mul_ps(coef[c], inv));
      ksum = _mm512_add_epi32(ksum, k);
      k8[c] = _mm512_cvtsepi32_epi8(k);
    }
    _mm512_store_si512(offset, _mm512_mullo_epi32(ksum, _mm512_set1_epi32(-8)));
    for (int g = 0; g < 4; ++g) {  // columns 4g..4g+3 x 16 blocks, transposed to block-major
      __m512i z = _mm512_castsi128_si512(k8[4 * g]);
      z = _mm512_inserti32x4(z, k8[4 * g + 1], 1);
      z = _mm512_inserti32x4(z, k8[4 * g + 2], 2);
      z = _mm512_inserti32x4(z, k8[4 * g + 3], 3);
      _mm512_store_si512(k4[g], _mm512_permutexvar_epi8(perm, z));
    }

    for (size_t j = 0; j < nb; ++j) {
      const size_t off = (b + j) * kBlock;
      if ((b + j) % 3 == 0) {  // every 64-byte line of every column (3 blocks = 54 bytes)
        for (int c = 0; c < 16; ++c) __builtin_prefetch(col[c] + off + kAhead);
      }
      if (!(scale[j] > 0.0f)) continue;  // all sixteen coefficients zero: nothing to add
      __m512i acc_lo = _mm512_set1_epi32(offset[j]), acc_hi = acc_lo;
      for (int g = 0; g < 4; ++g) {
        const __m512i kg = _mm512_set1_epi32(k4[g][j]);
        __m512i v = _mm512_castsi128_si512(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs[4 * g] + off)));
        v = _mm512_inserti32x4(
            v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs[4 * g + 1] + off)), 1);
        v = _mm512_inserti32x4(
            v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs[4 * g + 2] + off)), 2);
        v = _mm512_inserti32x4(
            v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs[4 * g + 3] + off)), 3);
        const __m512i lo = _mm512_and_si512(v, low_nibbles);  // outputs 0..15
        const __m512i hi =
            _mm512_and_si512(_mm512_srli_epi16(v, 4), low_nibbles);  // outputs 16..31
        acc_lo = _mm512_dpbusd_epi32(acc_lo, _mm512_permutexvar_epi8(perm, lo), kg);
        acc_hi = _mm512_dpbusd_epi32(acc_hi, _mm512_permutexvar_epi8(perm, hi), kg);
      }
      const __m512 s = _mm512_set1_ps(scale[j]);
      float* yb = y + (b + j) * 32;
      _mm512_storeu_ps(yb, _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(acc_lo), _mm512_loadu_ps(yb)));
      _mm512_storeu_ps(yb + 16,
                       _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(acc_hi), _mm512_loadu_ps(yb + 16)));
    }
  }
}

}  // namespace dip

#else

namespace dip {
bool colsparse_q4_vnni_available() { return false; }
void colsparse_q4_vnni16(const uint8_t* const*, const float*, float*, size_t, size_t) {}
}  // namespace dip

#endif
