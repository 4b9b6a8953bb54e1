// Q8_0 / Q4_0 weight rows times Q8_0 activations with AVX-512 VNNI (vpdpbusd on 256-bit
// vectors, which Zen 4 runs at full rate). Highway 1.0.3 (Debian 12) has no op for the
// u8 x s8 dot-product instructions, so this one file uses intrinsics; it is compiled with
// its own target flags and only called after a CPUID check (see qdot_vnni.h).
//
// Per (row, activation) the arithmetic is close to ggml's x86 kernels: 32-element block sums
// in eight int32 lanes (exact), converted to float and accumulated with the block's scale
// product dw*da by FMA into float lanes, then one horizontal sum. The results do not depend
// on how rows and tokens are tiled here.
#include "ops/qdot_vnni.h"

#if defined(__x86_64__) && defined(DIP_HAVE_VNNI_KERNELS)
#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <vector>

namespace dip {
namespace {

inline float fp16_scale(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// An activation row unpacked once per call for every weight row that meets it: quants
// 32-byte aligned, scales as floats, and (for Q4_0) the block's offset term.
struct alignas(32) Bytes32 {
  uint8_t v[32];
};

struct PreparedAct {
  const Bytes32* q;
  const float* d;
  const float* off;
};

struct PreparedActs {
  std::vector<Bytes32> q;
  std::vector<float> d, off;
  std::vector<PreparedAct> rows;
  void prepare(bool q4, const uint8_t* acts, size_t arb, size_t n_act, size_t nb) {
    q.resize(n_act * nb);
    d.resize(n_act * nb);
    off.resize(q4 ? n_act * nb : 0);
    rows.resize(n_act);
    for (size_t t = 0; t < n_act; ++t) {
      const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(acts + t * arb);
      for (size_t b = 0; b < nb; ++b) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
        _mm256_store_si256(reinterpret_cast<__m256i*>(&q[t * nb + b]), v);
        d[t * nb + b] = fp16_scale(a[b].d);
        // Q4_0 nibbles are unsigned 0..15: sum((q - 8) a) = sum(q a) - 8 sum(a). The second
        // term, times the activation scale, is subtracted per block as a scalar (times dw).
        if (q4) {
          int sum = 0;
          for (int j = 0; j < 32; ++j) sum += a[b].qs[j];
          off[t * nb + b] = float(8 * sum) * d[t * nb + b];
        }
      }
      rows[t] = {&q[t * nb], &d[t * nb], q4 ? &off[t * nb] : nullptr};
    }
  }
};

// R weight rows x T activation rows, all nb blocks; writes y[t * ys + row]. Even and odd
// blocks go to two accumulators so the FMA latency chain does not bound a single stream.
template <bool kQ4, int R, int T>
void tile(const uint8_t* w, size_t wrb, size_t nb, const PreparedAct* acts, float* y, size_t ys, size_t row) {
  __m256 acc[2][R][T];
  float offset[R][T] = {};
  for (int p = 0; p < 2; ++p)
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[p][r][t] = _mm256_setzero_ps();
  const __m256i zero = _mm256_setzero_si256();
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  auto block = [&](size_t b, __m256 (&a)[R][T]) {
    __m256i av[T];
    float da[T], off[T];
    for (int t = 0; t < T; ++t) {
      av[t] = _mm256_load_si256(reinterpret_cast<const __m256i*>(acts[t].q + b));
      da[t] = acts[t].d[b];
      if constexpr (kQ4) off[t] = acts[t].off[b];
    }
    for (int r = 0; r < R; ++r) {
      if constexpr (kQ4) {
        const BlockQ4_0* blk = reinterpret_cast<const BlockQ4_0*>(w + (row + r) * wrb) + b;
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs));
        const __m256i wv = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low4);
        const float dw = fp16_scale(blk->d);
        for (int t = 0; t < T; ++t) {
          const __m256i s = _mm256_dpbusd_epi32(zero, wv, av[t]);
          a[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * da[t]), _mm256_cvtepi32_ps(s), a[r][t]);
          offset[r][t] += dw * off[t];
        }
      } else {
        const BlockQ8_0* blk = reinterpret_cast<const BlockQ8_0*>(w + (row + r) * wrb) + b;
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qs));
        const float dw = fp16_scale(blk->d);
        // |w| as the unsigned operand, the activation carries w's sign (exact for w = -128).
        const __m256i aw = _mm256_abs_epi8(wv);
        const __mmask32 neg = _mm256_movepi8_mask(wv);
        for (int t = 0; t < T; ++t) {
          const __m256i sa = _mm256_mask_sub_epi8(av[t], neg, zero, av[t]);
          const __m256i s = _mm256_dpbusd_epi32(zero, aw, sa);
          a[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * da[t]), _mm256_cvtepi32_ps(s), a[r][t]);
        }
      }
    }
  };
  size_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    block(b, acc[0]);
    block(b + 1, acc[1]);
  }
  if (b < nb) block(b, acc[0]);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ys + row + r] = hsum8(_mm256_add_ps(acc[0][r][t], acc[1][r][t])) - offset[r][t];
}

template <bool kQ4, int T>
void rows_for_acts(const uint8_t* w, size_t wrb, size_t nb, const PreparedAct* acts, float* y,
                   size_t ys, size_t r0, size_t r1) {
  size_t r = r0;
  if constexpr (T > 1) for (; r + 4 <= r1; r += 4) tile<kQ4, 4, T>(w, wrb, nb, acts, y, ys, r);
  for (; r < r1; ++r) tile<kQ4, 1, T>(w, wrb, nb, acts, y, ys, r);
}

template <bool kQ4>
void qmatmul(const uint8_t* w, size_t wrb, size_t nb, const uint8_t* acts, size_t arb, size_t n_act,
             float* y, size_t ys, size_t r0, size_t r1) {
  thread_local PreparedActs prep;
  prep.prepare(kQ4, acts, arb, n_act, nb);
  const PreparedAct* act = prep.rows.data();
  if (n_act == 1) {
    rows_for_acts<kQ4, 1>(w, wrb, nb, act, y, ys, r0, r1);
    return;
  }
  // Chunks of activation rows that stay in L2 while 4-row weight tiles stream past them;
  // within a chunk, a weight tile stays in L1 for all of its 4-activation tiles.
  constexpr size_t kActChunk = 32, kRowChunk = 64;
  for (size_t c0 = 0; c0 < n_act; c0 += kActChunk) {
    const size_t c1 = std::min(n_act, c0 + kActChunk);
    for (size_t rr = r0; rr < r1; rr += kRowChunk) {
      const size_t re = std::min(r1, rr + kRowChunk);
      size_t t = c0;
      for (; t + 4 <= c1; t += 4) {
        rows_for_acts<kQ4, 4>(w, wrb, nb, act + t, y + t * ys, ys, rr, re);
      }
      for (; t < c1; ++t) {
        rows_for_acts<kQ4, 1>(w, wrb, nb, act + t, y + t * ys, ys, rr, re);
      }
    }
  }
}

}  // namespace

bool qdot_vnni_available() {
  // F16C through CPUID leaf 1: clang 14's __builtin_cpu_supports does not know "f16c".
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
  static const bool ok = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma") && f16c;
  return ok;
}

void qmatmul_vnni(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                  size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  const size_t nb = n / kQK8_0;
  if (wt == TensorType::Q4_0) {
    qmatmul<true>(w, wrow_bytes, nb, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else {
    qmatmul<false>(w, wrow_bytes, nb, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  }
}

}  // namespace dip

#else

namespace dip {
bool qdot_vnni_available() { return false; }
void qmatmul_vnni(TensorType, const uint8_t*, size_t, size_t, const uint8_t*, size_t, size_t, float*, size_t,
                  size_t, size_t) {}
}  // namespace dip

#endif
