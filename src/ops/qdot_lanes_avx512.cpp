// Q8_0 and Q4_0 weights x Q8_0 activations on AVX-512 VNNI, in llama.cpp's summation order
// (ggml_vec_dot_q8_0_q8_0 / ggml_vec_dot_q4_0_q8_0 for one token, llamafile's tinyBLAS_Q0_AVX
// for a batch): per 32-element block, eight int32 lanes of four products each (exact),
// converted to float and accumulated in block order by one FMA with the block's scale product
// dw*da into one 8-lane accumulator, then the same horizontal sum (high 128 + low 128, then
// movehl, then movehdup). The results are bit-identical to those kernels, which matters more
// than it seems: a difference of one float rounding in a projection can tip a later F16 or
// Q8_0 rounding and change the logits by 1e-2 (see docs/differential-results.md). One token:
// one row at a time (256-bit, one chain), so each thread reads one sequential stream, which
// keeps DRAM near its bandwidth (rows side by side lost a quarter of it on the dense
// benchmark). Batches: two weight ROWS per 512-bit register (row r low, row r + 1 high);
// independence for the FMA latency comes from row pairs and activations, never from splitting
// one row's sum. (Q4_0 matrices with a multiple of 8 rows use qdot_q4_0_rows_avx512.cpp:
// ggml repacks those and sums them in another order.)
//
// Both types as u8 x s8: u = w + 128 for Q8_0, the nibble for Q4_0 (w = u - 8); the per-lane
// offset -128 sum(a) or -8 sum(a) seeds vpdpbusd, so the int32 lanes equal sum(w a) exactly.
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ops/kernel_tiling.h"
#include "ops/tensor_types.h"

namespace dip {
namespace {

struct alignas(32) Lanes32 {
  uint8_t v[32];
};

// Activation rows unpacked once per call: per block the 32 quants, the eight lane offsets
// -128 (Q8_0) or -8 (Q4_0) times the sum of the lane's four quants, and the scale; loaded
// with a 256-to-512 broadcast.
struct PreparedQ8 {
  std::vector<Lanes32> q, off;
  std::vector<float> d;
  size_t nb = 0;
  void prepare(bool q4, const uint8_t* acts, size_t arb, size_t n_act, size_t n_blocks) {
    nb = n_blocks;
    q.resize(n_act * nb);
    off.resize(n_act * nb);
    d.resize(n_act * nb);
    const __m256i k = _mm256_set1_epi8(q4 ? 8 : char(-128));  // 8 or 128 as unsigned bytes
    for (size_t t = 0; t < n_act; ++t) {
      const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(acts + t * arb);
      for (size_t b = 0; b < nb; ++b) {
        const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
        _mm256_store_si256(reinterpret_cast<__m256i*>(&q[t * nb + b]), qv);
        const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), k, qv);
        _mm256_store_si256(reinterpret_cast<__m256i*>(&off[t * nb + b]),
                           _mm256_sub_epi32(_mm256_setzero_si256(), s));
        d[t * nb + b] = _cvtsh_ss(a[b].d);
      }
    }
  }
};

inline __m512i broadcast256(const Lanes32& x) {
  return _mm512_broadcast_i64x4(_mm256_load_si256(reinterpret_cast<const __m256i*>(x.v)));
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// A weight block (BlockQ8_0 or BlockQ4_0: the fp16 scale, then the quants) of row `row`.
template <bool kQ4>
inline const uint8_t* block_at(const uint8_t* row, size_t b) {
  return row + b * (kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0));
}

// Its fp16 scale (the first two bytes of both block types).
inline uint16_t block_scale(const uint8_t* blk) {
  uint16_t d;
  std::memcpy(&d, blk, sizeof d);
  return d;
}

// The block's 32 weights as unsigned bytes in element order (Q4_0's qs[j] holds element j in
// its low nibble and j + 16 in its high one).
template <bool kQ4>
inline __m256i unsigned_quants(const uint8_t* blk) {
  if constexpr (kQ4) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    return _mm256_and_si256(
        _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1),
        _mm256_set1_epi8(0x0f));
  } else {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)),
                            _mm256_set1_epi8(char(0x80)));
  }
}

// One prefetch per row about every cache line: two Q8_0 blocks (68 bytes), four Q4_0 (72).
template <bool kQ4>
inline bool prefetch_block(size_t b) {
  return b % (kQ4 ? 4 : 2) == 0;
}

// P row pairs x T activations over all blocks. rows[p] = {first row, second row}; the second
// may repeat the first (an odd last row), and then write_hi[p] is false and it is not written.
template <bool kQ4, int P, int T>
void tile(const uint8_t* w, size_t wrb, const PreparedQ8& pa, size_t t0, float* y, size_t ys,
          const size_t (&rows)[P][2], const bool (&write_hi)[P]) {
  __m512 acc[P][T];
  for (int p = 0; p < P; ++p)
    for (int t = 0; t < T; ++t) acc[p][t] = _mm512_setzero_ps();
  const size_t nb = pa.nb;
  for (size_t b = 0; b < nb; ++b) {
    __m512i u[P];
    __m512 dw[P];
    for (int p = 0; p < P; ++p) {
      const uint8_t* b0 = block_at<kQ4>(w + rows[p][0] * wrb, b);
      const uint8_t* b1 = block_at<kQ4>(w + rows[p][1] * wrb, b);
      u[p] = _mm512_inserti64x4(_mm512_castsi256_si512(unsigned_quants<kQ4>(b0)),
                                unsigned_quants<kQ4>(b1), 1);
      dw[p] = _mm512_cvtph_ps(
          _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(short(block_scale(b0)))),
                                  _mm_set1_epi16(short(block_scale(b1))), 1));
    }
    for (int t = 0; t < T; ++t) {
      const size_t i = (t0 + t) * nb + b;
      const __m512i av = broadcast256(pa.q[i]), off = broadcast256(pa.off[i]);
      const __m512 da = _mm512_set1_ps(pa.d[i]);
      for (int p = 0; p < P; ++p) {
        const __m512i s = _mm512_dpbusd_epi32(off, u[p], av);
        acc[p][t] = _mm512_fmadd_ps(_mm512_mul_ps(dw[p], da), _mm512_cvtepi32_ps(s), acc[p][t]);
      }
    }
  }
  for (int p = 0; p < P; ++p)
    for (int t = 0; t < T; ++t) {
      y[t * ys + rows[p][0]] = hsum8(_mm512_castps512_ps256(acc[p][t]));
      if (write_hi[p])
        y[t * ys + rows[p][1]] =
            hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[p][t]), 1)));
    }
}

// One row against one activation, for one token, as ggml's vec_dot itself (256-bit, one chain).
template <bool kQ4>
float row_one_act(const uint8_t* wrow, const PreparedQ8& pa, size_t t) {
  const size_t nb = pa.nb;
  __m256 acc = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* blk = block_at<kQ4>(wrow, b);
    if (prefetch_block<kQ4>(b))
      _mm_prefetch(reinterpret_cast<const char*>(blk) + kWeightPrefetchBytes, _MM_HINT_T0);
    const size_t i = t * nb + b;
    const __m256i s = _mm256_dpbusd_epi32(
        _mm256_load_si256(reinterpret_cast<const __m256i*>(pa.off[i].v)), unsigned_quants<kQ4>(blk),
        _mm256_load_si256(reinterpret_cast<const __m256i*>(pa.q[i].v)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(block_scale(blk)) * pa.d[i]),
                          _mm256_cvtepi32_ps(s), acc);
  }
  return hsum8(acc);
}

// Rows [r0, r1) against activations t0..t0+T-1: P pairs at a time, then single pairs, then
// an odd last row paired with itself.
template <bool kQ4, int P, int T>
void rows_for_acts(const uint8_t* w, size_t wrb, const PreparedQ8& pa, size_t t0, float* y,
                   size_t ys, size_t r0, size_t r1) {
  size_t r = r0;
  for (; r + 2 * P <= r1; r += 2 * P) {
    size_t rows[P][2];
    bool hi[P];
    for (int p = 0; p < P; ++p) {
      rows[p][0] = r + 2 * p;
      rows[p][1] = r + 2 * p + 1;
      hi[p] = true;
    }
    tile<kQ4, P, T>(w, wrb, pa, t0, y, ys, rows, hi);
  }
  for (; r < r1; r += 2) {
    const bool two = r + 1 < r1;
    const size_t rows[1][2] = {{r, two ? r + 1 : r}};
    const bool hi[1] = {two};
    tile<kQ4, 1, T>(w, wrb, pa, t0, y, ys, rows, hi);
  }
}

template <bool kQ4>
void qmatmul(const uint8_t* w, size_t wrb, size_t n, const uint8_t* acts, size_t arb, size_t n_act,
             float* y, size_t ys, size_t r0, size_t r1) {
  thread_local PreparedQ8 prep;
  prep.prepare(kQ4, acts, arb, n_act, n / kQK8_0);
  if (n_act == 1) {
    for (size_t r = r0; r < r1; ++r) y[r] = row_one_act<kQ4>(w + r * wrb, prep, 0);
    return;
  }
  for_each_act_tile(
      n_act, r0, r1, 32, 64,
      [&](size_t t, size_t rr, size_t re) {
        rows_for_acts<kQ4, 2, 4>(w, wrb, prep, t, y + t * ys, ys, rr, re);
      },
      [&](size_t t, size_t rr, size_t re) {
        rows_for_acts<kQ4, 4, 1>(w, wrb, prep, t, y + t * ys, ys, rr, re);
      });
}

}  // namespace

void qmatmul_lanes_avx512(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                          const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y,
                          size_t y_stride, size_t r0, size_t r1) {
  if (wt == TensorType::Q4_0) {
    qmatmul<true>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else {
    qmatmul<false>(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  }
}

}  // namespace dip
#endif
