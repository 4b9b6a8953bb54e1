#include "ops/q4_0_x8.h"

#include <cstring>

#include "ops/matvec.h"
#include "ops/qdot_x86.h"
#include "ops/tensor_types.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
void qmatmul_q4_0_x8_avx2(const uint8_t* packed, size_t n, const uint8_t* acts, size_t arow_bytes,
                          size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1);
#endif

void repack_q4_0_x8(const uint8_t* w, size_t rows, size_t n, uint8_t* out) {
  if (rows % 8 != 0 || n % kQK8_0 != 0)
    fail("internal: Q4_0 repack of {} rows x {} (needs rows % 8 == 0)", rows, n);
  const size_t nb = n / kQK8_0;
  const BlockQ4_0* in = reinterpret_cast<const BlockQ4_0*>(w);
  for (size_t g = 0; g < rows / 8; ++g) {
    for (size_t b = 0; b < nb; ++b) {
      uint8_t* dst = out + (g * nb + b) * kQ4x8BlockBytes;
      for (size_t r = 0; r < 8; ++r) {
        const BlockQ4_0& blk = in[(8 * g + r) * nb + b];
        std::memcpy(dst + 2 * r, &blk.d, 2);
        for (size_t j = 0; j < 4; ++j) std::memcpy(dst + 16 + 32 * j + 4 * r, blk.qs + 4 * j, 4);
      }
    }
  }
}

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
bool q4_0_x8_available() { return qdot_x86_available(QdotIsa::kAvx2); }
bool q4_0_x8_preferred() { return qdot_x86_best() == QdotIsa::kAvx2; }

void qmatmul_q4_0_x8(const uint8_t* packed, size_t n, const uint8_t* acts, size_t arow_bytes,
                     size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  if (!q4_0_x8_available()) fail("internal: the repacked Q4_0 kernel needs AVX2");
  qmatmul_q4_0_x8_avx2(packed, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
}
#else
bool q4_0_x8_available() { return false; }
bool q4_0_x8_preferred() { return false; }

void qmatmul_q4_0_x8(const uint8_t*, size_t, const uint8_t*, size_t, size_t, float*, size_t, size_t,
                     size_t) {
  fail("internal: the repacked Q4_0 kernel needs AVX2");
}
#endif

void matmul_q4_0_x8(const uint8_t* packed, size_t n, size_t rows, const EncodedActs& acts, float* y,
                    size_t y_stride, ThreadPool* pool) {
  if (acts.type != TensorType::Q8_0 || acts.n != n || rows % 8 != 0)
    fail("internal: repacked Q4_0 product of {} rows x {} with {} activations", rows, n, acts.n);
  auto body = [&](size_t r0, size_t r1) {
    qmatmul_q4_0_x8(packed, n, acts.data.data(), acts.row_bytes, acts.rows, y, y_stride, r0, r1);
  };
  if (pool && rows >= 64) {
    pool->parallel_for(rows, 16, body);  // chunks of whole groups (16 rows), the last to `rows`
  } else {
    body(0, rows);
  }
}

}  // namespace dip
