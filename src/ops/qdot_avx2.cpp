// The x86 quantized kernels for AVX2 (+FMA, F16C): four u8 x s8 products per int32 lane
// through vpmaddubsw + vpmaddwd, as ggml's AVX2 kernels do; compiled with its own target
// flags, called only after a CPUID check.
#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <immintrin.h>

namespace dip {
namespace {
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
}  // namespace
}  // namespace dip

#define DIP_QDOT_ENTRY qmatmul_avx2
// 2 x 1 x 4 accumulators of 16 registers: a 4-row tile (32) spilled, 15-20% slower batches
#define DIP_QDOT_TILE_ROWS 1
#include "ops/qdot_x86_kernels.inc"
#endif
