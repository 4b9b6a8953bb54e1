// The x86 quantized kernels for AVX-512 VNNI (vpdpbusd on 256-bit vectors, which Zen 4 runs
// at full rate); compiled with its own target flags, called only after a CPUID check.
#include "ops/qdot_x86.h"

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <algorithm>
#include <vector>

namespace dip {
namespace {
inline __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
}  // namespace
}  // namespace dip

#include "ops/qdot_x86_kernels.inc"

namespace dip {
void qmatmul_vnni(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                  size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  qmatmul_any(wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
}
}  // namespace dip
#endif
