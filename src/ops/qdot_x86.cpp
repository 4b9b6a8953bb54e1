// Which of the x86 quantized kernels this CPU runs, and the call into them.
#include "ops/qdot_x86.h"

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
#include <cpuid.h>
#endif

#include "util/error.h"

namespace dip {

#if defined(__x86_64__) && defined(DIP_HAVE_X86_QDOT)
void qmatmul_vnni(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                  size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1);
void qmatmul_lanes_avx512(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                          const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y,
                          size_t y_stride, size_t r0, size_t r1);
void qmatmul_q4_0_rows_avx512(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                              size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                              size_t r1);
void kmatmul_avx512(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                    const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                    size_t r0, size_t r1);
void matmul_bf16_avx512(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                        size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                        size_t r1);
void kmatmul_avx2(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                  size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1);
void qmatmul_avx2(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                  size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1);

bool qdot_x86_available(QdotIsa isa) {
  // F16C through CPUID leaf 1: clang 14's __builtin_cpu_supports does not know "f16c".
  unsigned a = 0, b = 0, c = 0, d = 0;
  static const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
  static const bool avx2 = f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  static const bool vnni = avx2 && __builtin_cpu_supports("avx512vnni") &&
                           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  switch (isa) {
    case QdotIsa::kAvx2:
      return avx2;
    case QdotIsa::kAvx512Vnni:
    case QdotIsa::kAvx512:
      return vnni;
    case QdotIsa::kNone:
      return true;
  }
  return false;
}

void qmatmul_x86(QdotIsa isa, TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                 const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                 size_t r0, size_t r1) {
  if (!qdot_x86_available(isa) || isa == QdotIsa::kNone)
    fail("internal: x86 kernels for {} not available", qdot_isa_name(isa));
  if (isa == QdotIsa::kAvx512) {
    qmatmul_lanes_avx512(wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else if (isa == QdotIsa::kAvx512Vnni) {
    qmatmul_vnni(wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else {
    qmatmul_avx2(wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  }
}

void qmatmul_q4_0_rows_x86(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                           size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                           size_t r1) {
  if (!qdot_x86_available(QdotIsa::kAvx512)) fail("internal: AVX-512 VNNI kernels not available");
  qmatmul_q4_0_rows_avx512(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
}

void kmatmul_x86(QdotIsa isa, TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                 const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                 size_t r0, size_t r1) {
  if (!qdot_x86_available(isa) || isa == QdotIsa::kNone || !is_k_quant(wt))
    fail("internal: {} K-quant kernels not available for {}", qdot_isa_name(isa),
         ggml_type_name(uint32_t(wt)));
  // Q2_K and Q3_K have an AVX2 kernel only, which AVX-512 CPUs run too.
  if (isa == QdotIsa::kAvx2 || wt == TensorType::Q2_K || wt == TensorType::Q3_K) {
    kmatmul_avx2(wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else {
    kmatmul_avx512(wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  }
}

bool bf16dot_x86_available() {
  static const bool bf16 =
      qdot_x86_available(QdotIsa::kAvx512Vnni) && __builtin_cpu_supports("avx512bf16");
  return bf16;
}

void matmul_bf16_x86(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                     size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                     size_t r1) {
  if (!bf16dot_x86_available()) fail("internal: AVX512_BF16 kernels not available");
  matmul_bf16_avx512(w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
}
#else
bool qdot_x86_available(QdotIsa isa) { return isa == QdotIsa::kNone; }
void qmatmul_q4_0_rows_x86(const uint8_t*, size_t, size_t, const uint8_t*, size_t, size_t, float*,
                           size_t, size_t, size_t) {
  fail("internal: AVX-512 VNNI kernels not available");
}
void kmatmul_x86(QdotIsa isa, TensorType wt, const uint8_t*, size_t, size_t, const uint8_t*, size_t,
                 size_t, float*, size_t, size_t, size_t) {
  fail("internal: {} K-quant kernels not available for {}", qdot_isa_name(isa),
       ggml_type_name(uint32_t(wt)));
}
bool bf16dot_x86_available() { return false; }
void matmul_bf16_x86(const uint8_t*, size_t, size_t, const uint8_t*, size_t, size_t, float*, size_t,
                     size_t, size_t) {
  fail("internal: AVX512_BF16 kernels not available");
}
void qmatmul_x86(QdotIsa isa, TensorType, const uint8_t*, size_t, size_t, const uint8_t*, size_t,
                 size_t, float*, size_t, size_t, size_t) {
  fail("internal: x86 kernels for {} not available", qdot_isa_name(isa));
}
#endif

QdotIsa qdot_x86_best() {
  static const QdotIsa best = qdot_x86_available(QdotIsa::kAvx512)       ? QdotIsa::kAvx512
                              : qdot_x86_available(QdotIsa::kAvx512Vnni) ? QdotIsa::kAvx512Vnni
                              : qdot_x86_available(QdotIsa::kAvx2)       ? QdotIsa::kAvx2
                                                                         : QdotIsa::kNone;
  return best;
}

const char* qdot_isa_name(QdotIsa isa) {
  switch (isa) {
    case QdotIsa::kAvx2:
      return "avx2";
    case QdotIsa::kAvx512Vnni:
      return "avx512-vnni-256";
    case QdotIsa::kAvx512:
      return "avx512-vnni-512";
    case QdotIsa::kNone:
      return "none";
  }
  return "?";
}

}  // namespace dip
