// The x86 quantized kernels for AVX2 (+FMA, F16C): four u8 x s8 products per int32 lane
// through vpmaddubsw + vpmaddwd, as ggml's AVX2 kernels do; compiled with its own target
// flags, called only after a CPUID check.
#include "ops/qdot_x86.h"

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

#include <algorithm>
#include <vector>

namespace dip {
namespace {
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
}  // namespace
}  // namespace dip

#include "ops/qdot_x86_kernels.inc"

namespace dip {
void qmatmul_avx2(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                  size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  qmatmul_any(wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
}
}  // namespace dip
#endif
