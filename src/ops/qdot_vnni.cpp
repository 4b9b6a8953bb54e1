// The x86 quantized kernels for AVX-512 VNNI (vpdpbusd on 256-bit vectors, which Zen 4 runs
// at full rate); compiled with its own target flags, called only after a CPUID check.
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

namespace dip {
namespace {
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}
}  // namespace
}  // namespace dip

#define DIP_QDOT_ENTRY qmatmul_vnni
#define DIP_QDOT_TILE_ROWS 4
#include "ops/qdot_x86_kernels.inc"
#endif
