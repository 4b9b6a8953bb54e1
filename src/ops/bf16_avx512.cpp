// BF16 weights times BF16 activations with AVX512_BF16's vdpbf16ps: 32 products per
// instruction, summed in pairs into 16 float lanes, without a decode pass. Compiled with its
// own target flags, called only after a CPUID check. ggml's CPU backend uses the same
// instruction for BF16 dot products; like it (and unlike the Highway kernel, which widens to
// F32 and uses FMA), the instruction treats BF16 denormals as zero.
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "ops/kernel_tiling.h"

namespace dip {
namespace {

// R weight rows x T activation rows over n elements; y[t * ys + row + r].
template <int R, int T>
void tile(const uint8_t* w, size_t wrb, size_t n, const uint8_t* x, size_t xrb, float* y, size_t ys,
          size_t row) {
  constexpr int kChains = R * T == 1 ? 4 : R * T == 2 ? 2 : 1;  // enough independent FMA chains
  __m512 acc[kChains][R][T];
  for (int c = 0; c < kChains; ++c)
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[c][r][t] = _mm512_setzero_ps();
  auto step = [&](size_t i, __mmask32 m, __m512(&a)[R][T]) {
    __m512bh wv[R];
    if constexpr (T == 1) {  // one token: the weights stream once, prefetch ahead
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(
            reinterpret_cast<const char*>(w + (row + r) * wrb + 2 * i + kWeightPrefetchBytes),
            _MM_HINT_T0);
      }
    }
    for (int r = 0; r < R; ++r)
      wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + (row + r) * wrb + 2 * i);
    for (int t = 0; t < T; ++t) {
      const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, x + t * xrb + 2 * i);
      for (int r = 0; r < R; ++r) a[r][t] = _mm512_dpbf16_ps(a[r][t], wv[r], xv);
    }
  };
  size_t i = 0;
  for (; i + 32 * kChains <= n; i += 32 * kChains)
    for (int c = 0; c < kChains; ++c) step(i + 32 * c, ~__mmask32(0), acc[c]);
  for (; i + 32 <= n; i += 32) step(i, ~__mmask32(0), acc[0]);
  if (i < n) step(i, __mmask32((1ull << (n - i)) - 1), acc[0]);  // the masked-off lanes load zeros
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      __m512 s = acc[0][r][t];
      for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c][r][t]);
      y[t * ys + row + r] = _mm512_reduce_add_ps(s);
    }
}

template <int T>
void rows_for_acts(const uint8_t* w, size_t wrb, size_t n, const uint8_t* x, size_t xrb, float* y,
                   size_t ys, size_t r0, size_t r1) {
  size_t r = r0;
  if constexpr (T > 1)
    for (; r + 4 <= r1; r += 4) tile<4, T>(w, wrb, n, x, xrb, y, ys, r);
  for (; r < r1; ++r) tile<1, T>(w, wrb, n, x, xrb, y, ys, r);
}

}  // namespace

void matmul_bf16_avx512(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                        size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                        size_t r1) {
  if (n_act == 1) {
    rows_for_acts<1>(w, wrow_bytes, n, acts, arow_bytes, y, y_stride, r0, r1);
    return;
  }
  // Smaller chunks than the quantized kernels: BF16 rows are twice the bytes of Q8_0 rows.
  const size_t arb = arow_bytes;
  for_each_act_tile(
      n_act, r0, r1, 16, 32,
      [&](size_t t, size_t rr, size_t re) {
        rows_for_acts<4>(w, wrow_bytes, n, acts + t * arb, arb, y + t * y_stride, y_stride, rr, re);
      },
      [&](size_t t, size_t rr, size_t re) {
        rows_for_acts<1>(w, wrow_bytes, n, acts + t * arb, arb, y + t * y_stride, y_stride, rr, re);
      });
}

}  // namespace dip
#endif
