#include "ops/repack_x8.h"

#include <cstring>

#include "ops/matvec.h"
#include "ops/qdot_x86.h"
#include "ops/quant.h"
#include "ops/quant_k.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
void qmatmul_q4_0_x8_avx2(const uint8_t* packed, size_t n, const uint8_t* acts, size_t arow_bytes,
                          size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1);
void qmatmul_q4_k_x8_avx2(const uint8_t* packed, size_t n, const uint8_t* acts, size_t arow_bytes,
                          size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1);
#endif

namespace {

constexpr size_t kQ4_0x8Bytes = 8 * sizeof(BlockQ4_0), kQ4_Kx8Bytes = 8 * sizeof(BlockQ4K);

void repack_q4_0_block(const BlockQ4_0* rows, size_t stride, uint8_t* dst) {
  for (size_t r = 0; r < 8; ++r) {
    const BlockQ4_0& blk = rows[r * stride];
    std::memcpy(dst + 2 * r, &blk.d, 2);
    for (size_t j = 0; j < 4; ++j) std::memcpy(dst + 16 + 32 * j + 4 * r, blk.qs + 4 * j, 4);
  }
}

void repack_q4_k_block(const BlockQ4K* rows, size_t stride, uint8_t* dst) {
  uint8_t v[128];
  for (size_t r = 0; r < 8; ++r) {
    const BlockQ4K& blk = rows[r * stride];
    std::memcpy(dst + 2 * r, &blk.d, 2);
    std::memcpy(dst + 16 + 2 * r, &blk.dmin, 2);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      scale_min_k4(j, blk.scales, sc, m);
      v[8 * j + r] = sc;
      v[64 + 16 * (j / 2) + 2 * r + (j % 2)] = m;
    }
    for (size_t k = 0; k < 4; ++k)
      for (size_t j = 0; j < 8; ++j)
        std::memcpy(dst + 128 + 32 * (8 * k + j) + 4 * r, blk.qs + 32 * k + 4 * j, 4);
  }
  uint8_t* packed = dst + 32;
  for (int i = 0; i < 64; ++i) packed[i] = uint8_t((v[i] & 15) | ((v[i + 64] & 15) << 4));
  for (int m = 0; m < 32; ++m)
    packed[64 + m] = uint8_t((v[m] >> 4) | ((v[m + 32] >> 4) << 2) | ((v[m + 64] >> 4) << 4) |
                             ((v[m + 96] >> 4) << 6));
}

bool has_x8_form(TensorType t) { return t == TensorType::Q4_0 || t == TensorType::Q4_K; }

// The unit of eight rows' block b.
size_t x8_block_bytes(TensorType t) { return t == TensorType::Q4_0 ? kQ4_0x8Bytes : kQ4_Kx8Bytes; }

}  // namespace

void repack_x8(TensorType t, const uint8_t* w, size_t rows, size_t n, uint8_t* out) {
  const size_t block = block_elems(t);
  if (!has_x8_form(t) || rows % 8 != 0 || n % block != 0)
    fail("internal: {} repack of {} rows x {} (needs Q4_0 or Q4_K, rows % 8 == 0)",
         ggml_type_name(uint32_t(t)), rows, n);
  const size_t nb = n / block, unit = x8_block_bytes(t);
  for (size_t g = 0; g < rows / 8; ++g) {
    for (size_t b = 0; b < nb; ++b) {
      uint8_t* dst = out + (g * nb + b) * unit;
      if (t == TensorType::Q4_0) {
        repack_q4_0_block(reinterpret_cast<const BlockQ4_0*>(w) + 8 * g * nb + b, nb, dst);
      } else {
        repack_q4_k_block(reinterpret_cast<const BlockQ4K*>(w) + 8 * g * nb + b, nb, dst);
      }
    }
  }
}

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
bool x8_available(TensorType t) { return has_x8_form(t) && qdot_x86_available(QdotIsa::kAvx2); }
bool x8_preferred(TensorType t) { return has_x8_form(t) && qdot_x86_best() == QdotIsa::kAvx2; }

void qmatmul_x8(TensorType t, const uint8_t* packed, size_t n, const uint8_t* acts,
                size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1) {
  if (!x8_available(t))
    fail("internal: the repacked {} kernel needs AVX2", ggml_type_name(uint32_t(t)));
  if (t == TensorType::Q4_0) {
    qmatmul_q4_0_x8_avx2(packed, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else {
    qmatmul_q4_k_x8_avx2(packed, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  }
}
#else
bool x8_available(TensorType) { return false; }
bool x8_preferred(TensorType) { return false; }

void qmatmul_x8(TensorType t, const uint8_t*, size_t, const uint8_t*, size_t, size_t, float*,
                size_t, size_t, size_t) {
  fail("internal: the repacked {} kernel needs AVX2", ggml_type_name(uint32_t(t)));
}
#endif

void matmul_x8(TensorType t, const uint8_t* packed, size_t n, size_t rows, const EncodedActs& acts,
               float* y, size_t y_stride, ThreadPool* pool) {
  if (acts.type != activation_type(t) || acts.n != n || rows % 8 != 0)
    fail("internal: repacked {} product of {} rows x {} with {} activations",
         ggml_type_name(uint32_t(t)), rows, n, acts.n);
  auto body = [&](size_t r0, size_t r1) {
    qmatmul_x8(t, packed, n, acts.data.data(), acts.row_bytes, acts.rows, y, y_stride, r0, r1);
  };
  if (pool && rows >= 64) {
    pool->parallel_for(rows, 16, body);  // chunks of whole groups (16 rows), the last to `rows`
  } else {
    body(0, rows);
  }
}

}  // namespace dip
