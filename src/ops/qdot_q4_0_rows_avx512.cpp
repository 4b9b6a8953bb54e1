// Q4_0 weights x Q8_0 activations in the order of llama.cpp's repacked Q4_0 kernels: on every
// x86 CPU with AVX2 ggml repacks Q4_0 matrices whose row count is a multiple of 8 into its
// 8-row interleaved form and multiplies them with ggml_gemv/gemm_q4_0_8x8_q8_0, which per
// (row, activation) add, block by block in order, fma(float(exact integer sum of the block's 32
// products), dw * da, acc): one float chain per row, the rows spread across the lanes. The same
// here without repacking (the weights stay in GGUF layout, mmap'd or read from flash): 16 rows
// per tile, eight row pairs of vpdpbusd partial sums reduced to one int32 per row and block
// (integer sums: any order is exact), then one FMA per block for all 16 rows.
// matmul() picks this kernel exactly where ggml repacks (rows % 8 == 0); other Q4_0 matrices
// keep the per-lane order of ggml_vec_dot_q4_0_q8_0 (qdot_lanes_avx512.cpp).
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/kernel_tiling.h"
#include "ops/quant.h"
#include "ops/tensor_types.h"

namespace dip {
namespace {

struct alignas(64) Lanes64 {
  uint8_t v[64];
};

// The activations' quants as [a0..15, a0..15, a16..31, a16..31] per block (the order in which
// two weight rows' nibbles sit in a register, see load_pair).
struct PreparedQ4Acts : Q4ActSums {
  std::vector<Lanes64> q;
  void prepare(const uint8_t* acts, size_t arb, size_t n_act, size_t n_blocks) {
    compute(acts, arb, n_act, n_blocks);
    q.resize(n_act * nb);
    for (size_t t = 0; t < n_act; ++t) {
      const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(acts + t * arb);
      for (size_t b = 0; b < nb; ++b) {
        const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[b].qs));
        const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[b].qs + 16));
        const __m256i lolo = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), lo, 1);
        const __m256i hihi = _mm256_inserti128_si256(_mm256_castsi128_si256(hi), hi, 1);
        _mm512_store_si512(&q[t * nb + b],
                           _mm512_inserti64x4(_mm512_castsi256_si512(lolo), hihi, 1));
      }
    }
  }
};

// Two weight rows' block b as unsigned nibbles in 128-bit lanes [r0 0..15, r1 0..15,
// r0 16..31, r1 16..31] (qs[j] holds element j low and j + 16 high).
inline __m512i load_pair(const BlockQ4_0* b0, const BlockQ4_0* b1) {
  const __m256i raw = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0->qs))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b1->qs)), 1);
  const __m256i m = _mm256_set1_epi8(0x0f);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(raw, m)),
                            _mm256_and_si256(_mm256_srli_epi16(raw, 4), m), 1);
}

// Eight registers of per-lane partial sums (pair k: rows 2k and 2k + 1, lanes as load_pair)
// to one register of 16 row totals in row order.
inline __m512i row_totals(const __m512i (&z)[8]) {
  __m512i t[4];
  for (int m = 0; m < 4; ++m) {
    t[m] = _mm512_add_epi32(_mm512_unpacklo_epi64(z[2 * m], z[2 * m + 1]),
                            _mm512_unpackhi_epi64(z[2 * m], z[2 * m + 1]));
  }
  __m512i v[2];
  for (int g = 0; g < 2; ++g) {
    const __m512 a = _mm512_castsi512_ps(t[2 * g]), b = _mm512_castsi512_ps(t[2 * g + 1]);
    v[g] = _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))),
                            _mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))));
  }
  // 128-bit lane L of v[g] holds the lane-L totals of pairs 4g..4g+3; a row's two halves are
  // lanes 0 + 2 (first row of the pair) and 1 + 3 (second).
  const __m512i w = _mm512_add_epi32(_mm512_shuffle_i32x4(v[0], v[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_i32x4(v[0], v[1], _MM_SHUFFLE(3, 2, 3, 2)));
  // w holds rows 0,2,4,6, 1,3,5,7, 8,10,12,14, 9,11,13,15.
  const __m512i order = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
  return _mm512_permutexvar_epi32(order, w);
}

// Rows row0 .. row0 + 15 (rows past `last` repeat it and are not written) x T activations.
template <int T>
void tile16(const uint8_t* w, size_t wrb, const PreparedQ4Acts& pa, size_t t0, float* y, size_t ys,
            size_t row0, size_t last) {
  const BlockQ4_0* rows[16];
  int32_t offs[16];
  for (int i = 0; i < 16; ++i) {
    const size_t r = row0 + i <= last ? row0 + i : last;
    rows[i] = reinterpret_cast<const BlockQ4_0*>(w + r * wrb);
    offs[i] = int32_t((r - row0) * wrb);
  }
  const __m512i vindex = _mm512_loadu_si512(offs);
  const __mmask16 valid =
      last - row0 >= 15 ? __mmask16(0xffff) : __mmask16((1u << (last - row0 + 1)) - 1);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const size_t nb = pa.nb;
  for (size_t b = 0; b < nb; ++b) {
    __m512i u[8];
    for (int k = 0; k < 8; ++k) u[k] = load_pair(rows[2 * k] + b, rows[2 * k + 1] + b);
    // The 16 rows' fp16 scales (the first two bytes of each block) in one gather.
    const __m512i raw_d = _mm512_i32gather_epi32(
        vindex, reinterpret_cast<const void*>(w + row0 * wrb + b * sizeof(BlockQ4_0)), 1);
    const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw_d));
    for (int t = 0; t < T; ++t) {
      const size_t i = (t0 + t) * nb + b;
      const __m512i av = _mm512_load_si512(&pa.q[i]);
      __m512i z[8];
      for (int k = 0; k < 8; ++k) z[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[k], av);
      const __m512i isum = _mm512_sub_epi32(row_totals(z), _mm512_set1_epi32(pa.off8[i]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, _mm512_set1_ps(pa.d[i])),
                               acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * ys + row0, valid, acc[t]);
}

// One row against one activation, for one token: the row's blocks stream in memory order
// (16 rows side by side, as the batched tile reads them, cost a quarter of DRAM's bandwidth on
// the dense benchmark; two interleaved rows measured slower too), 16 blocks at a time to one
// register of block totals, then the row's FMA chain in block order.
float row_one_act(const uint8_t* wrow, const PreparedQ4Acts& pa, size_t t) {
  const BlockQ4_0* blk = reinterpret_cast<const BlockQ4_0*>(wrow);
  const size_t nb = pa.nb;
  const Lanes64* q = &pa.q[t * nb];
  const int32_t* off8 = &pa.off8[t * nb];
  const float* da = &pa.d[t * nb];
  const __m512i step =
      _mm512_setr_epi32(0, 18, 36, 54, 72, 90, 108, 126, 144, 162, 180, 198, 216, 234, 252, 270);
  alignas(64) float f[16], scale[16];
  float acc = 0.0f;
  size_t b = 0;
  for (; b + 16 <= nb; b += 16) {
    for (int i = 0; i < 4; ++i) {  // one prefetch per four blocks (72 bytes)
      _mm_prefetch(reinterpret_cast<const char*>(blk + b + 4 * i) + kWeightPrefetchBytes,
                   _MM_HINT_T0);
    }
    __m512i z[8];
    for (int k = 0; k < 8; ++k) {
      // Blocks b + 2k and b + 2k + 1 in the lanes load_pair gives two rows; the activation
      // quants to match: lanes 0, 2 of the first block's layout and 1, 3 of the second's.
      const __m512i av = _mm512_mask_blend_epi64(0xcc, _mm512_load_si512(&q[b + 2 * k]),
                                                 _mm512_load_si512(&q[b + 2 * k + 1]));
      z[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                 load_pair(blk + b + 2 * k, blk + b + 2 * k + 1), av);
    }
    const __m512i isum = _mm512_sub_epi32(row_totals(z), _mm512_loadu_si512(off8 + b));
    const __m512i raw_d = _mm512_i32gather_epi32(step, reinterpret_cast<const void*>(blk + b), 1);
    const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw_d));
    _mm512_store_ps(f, _mm512_cvtepi32_ps(isum));
    _mm512_store_ps(scale, _mm512_mul_ps(dw, _mm512_loadu_ps(da + b)));
    for (int i = 0; i < 16; ++i) acc = std::fma(f[i], scale[i], acc);
  }
  for (; b < nb; ++b) {
    // The block twice (as two rows): every product counted twice, the total halved exactly.
    const __m512i z = _mm512_dpbusd_epi32(_mm512_setzero_si512(), load_pair(blk + b, blk + b),
                                          _mm512_load_si512(&q[b]));
    const int isum = _mm512_reduce_add_epi32(z) / 2 - off8[b];
    acc = std::fma(float(isum), _cvtsh_ss(blk[b].d) * da[b], acc);
  }
  return acc;
}

template <int T>
void rows_for_acts(const uint8_t* w, size_t wrb, const PreparedQ4Acts& pa, size_t t0, float* y,
                   size_t ys, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; r += 16) tile16<T>(w, wrb, pa, t0, y, ys, r, r1 - 1);
}

}  // namespace

void qmatmul_q4_0_rows_avx512(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                              size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                              size_t r1) {
  if (r0 >= r1) return;
  thread_local PreparedQ4Acts prep;
  prep.prepare(acts, arow_bytes, n_act, n / kQK8_0);
  if (n_act == 1) {
    for (size_t r = r0; r < r1; ++r) y[r] = row_one_act(w + r * wrow_bytes, prep, 0);
    return;
  }
  for_each_act_tile(
      n_act, r0, r1, 32, 64,
      [&](size_t t, size_t rr, size_t re) {
        rows_for_acts<4>(w, wrow_bytes, prep, t, y + t * y_stride, y_stride, rr, re);
      },
      [&](size_t t, size_t rr, size_t re) {
        rows_for_acts<1>(w, wrow_bytes, prep, t, y + t * y_stride, y_stride, rr, re);
      });
}

}  // namespace dip
#endif
