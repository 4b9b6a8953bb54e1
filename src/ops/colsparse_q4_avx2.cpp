// Q4_0 column-sparse product in int8 with AVX2, sixteen kept columns at a time, bit for bit
// colsparse_q4_int8_ref16 (colsparse_q4_int8.h).
//
// Why: the float kernel (colsparse.cpp) turns every nibble into a float and spends one FMA per
// kept weight. Here the nibbles of two columns are interleaved per output (one unpack), and one
// vpmaddubsw multiplies them by the two columns' int8 coefficients and adds the pair. The int16
// sums are exact over all sixteen columns (at most 16 x 15 x 127 = 30480), so one widening, one
// conversion and one FMA per output serve sixteen columns. The nibbles' bias of 8 is taken out
// once per block as -8 x (sum of the coefficients). The per-block scales are prepared eight
// blocks at a time, one block per lane, from wide loads (AVX2 gathers are slow on the CPUs that
// run this kernel). On a Zen 3 core, kept columns in L2: about 9 GB/s against 6.6 for the float
// kernel (kernels_bench --benchmark_filter=ColsHot/type:4).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ops/colsparse_q4_int8.h"

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include "ops/qdot_x86.h"
#include "ops/tensor_types.h"

namespace dip {

// The CPU features of the AVX2 matmul kernels (AVX2, FMA, F16C), checked in one place.
bool colsparse_q4_avx2_available() { return qdot_x86_available(QdotIsa::kAvx2); }

namespace {
constexpr size_t kBlock = sizeof(BlockQ4_0);
constexpr size_t kAhead = 768;  // software prefetch distance inside each column (short streams)

// The 32 nibbles of one block: low halves (outputs 0..15) in the lower 128-bit lane, high
// halves (outputs 16..31) in the upper one.
inline __m256i nibbles(const uint8_t* qs, __m256i shift, __m256i low) {
  const __m256i v =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(v, shift), low);
}

// A chunk's lanes hold its blocks in the order 0, 2, 4, 6, 1, 3, 5, 7 (what chunk_scales'
// loads give without crossing lanes); kBlockLane[j] is block j's lane.
constexpr size_t kBlockLane[8] = {0, 4, 1, 5, 2, 6, 3, 7};

// Shuffle k of chunk_scales: bytes 0-1 of the lower 128-bit lane and bytes 18-19 (2-3 of the
// upper lane) to word k of their lane, every other byte zeroed.
struct ScaleShuffles {
  alignas(32) int8_t bytes[4][32];
  constexpr ScaleShuffles() : bytes() {
    for (int k = 0; k < 4; ++k) {
      for (int i = 0; i < 32; ++i) bytes[k][i] = -1;
      bytes[k][2 * k] = 0;
      bytes[k][2 * k + 1] = 1;
      bytes[k][16 + 2 * k] = 2;
      bytes[k][16 + 2 * k + 1] = 3;
    }
  }
};
constexpr ScaleShuffles kScaleShuffles;

// The fp16 scales of eight consecutive blocks of one column starting at p: four 32-byte loads,
// each holding two blocks' scales (at bytes 0 and 18), moved to their words and merged.
inline __m128i chunk_scales(const uint8_t* p) {
  __m256i v = _mm256_setzero_si256();
  for (int k = 0; k < 4; ++k) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * k * kBlock));
    const __m256i shuffle =
        _mm256_load_si256(reinterpret_cast<const __m256i*>(kScaleShuffles.bytes[k]));
    v = _mm256_or_si256(v, _mm256_shuffle_epi8(raw, shuffle));
  }
  // Words 0-3 of each lane: blocks 0, 2, 4, 6 | 1, 3, 5, 7.
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(v, 0x08));
}

}  // namespace

void colsparse_q4_avx2_16(const uint8_t* const* col, const float* x, float* y, size_t b0,
                          size_t b1) {
  constexpr size_t kChunk = 8;  // blocks whose scales are prepared together, one per lane
  const __m256i shift = _mm256_setr_epi64x(0, 0, 4, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const uint8_t* qs[16];
  for (int c = 0; c < 16; ++c) qs[c] = col[c] + offsetof(BlockQ4_0, qs);
  // Per chunk, each vector holds one value per block (block j in lane kBlockLane[j]): the scales
  // are reduced over the sixteen columns vertically, so blocks do not wait on each other's
  // horizontal reductions.
  alignas(32) __m256 coef[16];
  alignas(32) int32_t pairs[8][kChunk];  // word m, per lane: (k[2m], k[2m+1]) as two int8
  alignas(32) int32_t offset[kChunk];    // -8 * sum of k[c] (the nibbles' bias of 8)
  alignas(32) float scale[kChunk];       // amax / 127
  for (size_t b = b0; b < b1; b += kChunk) {
    const size_t nb = std::min(kChunk, b1 - b);
    // The sixteen columns' fp16 scales of the chunk's blocks, block j in lane kBlockLane[j]
    // (chunk_scales); a short last chunk through scalar loads (the wide ones would read past
    // the column).
    // (Not zero-initialized: a full chunk writes every lane, and clearing 256 bytes per chunk
    // cost a rep stos, several percent of the kernel.)
    alignas(32) uint16_t dh[16][kChunk];
    for (int c = 0; c < 16; ++c) {
      const uint8_t* p = col[c] + b * kBlock;
      if (nb == kChunk) {
        _mm_store_si128(reinterpret_cast<__m128i*>(dh[c]), chunk_scales(p));
      } else {
        _mm_store_si128(reinterpret_cast<__m128i*>(dh[c]), _mm_setzero_si128());
        for (size_t j = 0; j < nb; ++j) std::memcpy(&dh[c][kBlockLane[j]], p + j * kBlock, 2);
      }
    }
    __m256 amax = _mm256_setzero_ps();
    for (int c = 0; c < 16; ++c) {
      coef[c] =
          _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dh[c]))),
                        _mm256_set1_ps(x[c]));
      amax = _mm256_max_ps(amax, _mm256_and_ps(coef[c], abs_mask));
    }
    const __m256 inv = _mm256_div_ps(_mm256_set1_ps(127.0f), amax);  // inf where amax is 0
    _mm256_store_ps(scale, _mm256_div_ps(amax, _mm256_set1_ps(127.0f)));
    __m256i ksum = _mm256_setzero_si256();
    for (int m = 0; m < 8; ++m) {
      // Rounded to nearest even; |k| <= 127, so the low byte is k as int8.
      const __m256i ka = _mm256_cvtps_epi32(_mm256_mul_ps(coef[2 * m], inv));
      const __m256i kb = _mm256_cvtps_epi32(_mm256_mul_ps(coef[2 * m + 1], inv));
      ksum = _mm256_add_epi32(ksum, _mm256_add_epi32(ka, kb));
      _mm256_store_si256(
          reinterpret_cast<__m256i*>(pairs[m]),
          _mm256_or_si256(_mm256_and_si256(ka, _mm256_set1_epi32(0xff)),
                          _mm256_slli_epi32(_mm256_and_si256(kb, _mm256_set1_epi32(0xff)), 8)));
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(offset),
                       _mm256_mullo_epi32(ksum, _mm256_set1_epi32(-8)));

    for (size_t j = 0; j < nb; ++j) {
      const size_t off = (b + j) * kBlock;
      if ((b + j) % 3 == 0) {  // every 64-byte line of every column (3 blocks = 54 bytes)
        for (int c = 0; c < 16; ++c) __builtin_prefetch(col[c] + off + kAhead);
      }
      const size_t lane = kBlockLane[j];
      if (!(scale[lane] > 0.0f)) continue;  // all sixteen coefficients zero: nothing to add
      // acc_a: outputs 0..7 | 16..23, acc_b: outputs 8..15 | 24..31 (int16, per 128-bit lane).
      __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
      for (int m = 0; m < 8; ++m) {
        const __m256i qa = nibbles(qs[2 * m] + off, shift, low);
        const __m256i qb = nibbles(qs[2 * m + 1] + off, shift, low);
        const __m256i kp = _mm256_set1_epi16(int16_t(pairs[m][lane]));
        acc_a = _mm256_add_epi16(acc_a, _mm256_maddubs_epi16(_mm256_unpacklo_epi8(qa, qb), kp));
        acc_b = _mm256_add_epi16(acc_b, _mm256_maddubs_epi16(_mm256_unpackhi_epi8(qa, qb), kp));
      }
      const __m256i bias = _mm256_set1_epi32(offset[lane]);
      const __m256 sv = _mm256_set1_ps(scale[lane]);
      const __m256i out[4] = {_mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc_a)),
                              _mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc_b)),
                              _mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc_a, 1)),
                              _mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc_b, 1))};
      float* yb = y + (b + j) * 32;
      for (int i = 0; i < 4; ++i) {
        const __m256 v = _mm256_cvtepi32_ps(_mm256_add_epi32(out[i], bias));
        _mm256_storeu_ps(yb + 8 * i, _mm256_fmadd_ps(sv, v, _mm256_loadu_ps(yb + 8 * i)));
      }
    }
  }
}

}  // namespace dip

#else

namespace dip {
bool colsparse_q4_avx2_available() { return false; }
void colsparse_q4_avx2_16(const uint8_t* const*, const float*, float*, size_t, size_t) {}
}  // namespace dip

#endif
