// Hand-written x86 kernels for quantized weights (Q8_0, Q4_0) times Q8_0 activations: one
// body (qdot_x86_kernels.inc) compiled twice, for AVX-512 VNNI and for AVX2. Highway 1.0.3
// (Debian 12) has no op for the u8 x s8 dot-product instructions these need. Callers ask
// qdot_x86_best() first; where it says kNone (other CPUs, other architectures) the Highway
// kernels in matvec.cpp run.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/tensor_types.h"

namespace dip {

// kAvx512Vnni: the 256-bit kernels with vpdpbusd; kAvx512: the AVX-512 kernels in llama.cpp's
// summation order (qdot_lanes_avx512.cpp).
enum class QdotIsa { kNone, kAvx2, kAvx512Vnni, kAvx512 };

// Whether this build has the kernels for `isa` and the CPU runs them (CPUID).
bool qdot_x86_available(QdotIsa isa);
// The fastest available (512-bit, then 256-bit VNNI, then AVX2), or kNone.
QdotIsa qdot_x86_best();
const char* qdot_isa_name(QdotIsa isa);

// y[b * y_stride + r] = dot(W[r], act[b]) for rows r in [r0, r1) and b < n_act. W is Q8_0 or
// Q4_0 (rows of n elements, wrow_bytes apart); activations are Q8_0 rows arow_bytes apart.
// `isa` must be available.
void qmatmul_x86(QdotIsa isa, TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                 const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                 size_t r0, size_t r1);

// Q4_0 in the order of llama.cpp's repacked 8-row kernels (qdot_q4_0_rows_avx512.cpp), which
// ggml uses for Q4_0 matrices whose row count is a multiple of 8; same contract as
// qmatmul_x86. Call only where qdot_x86_available(QdotIsa::kAvx512).
void qmatmul_q4_0_rows_x86(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                           size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                           size_t r1);

// K-quant weights (Q2_K ... Q6_K) times Q8_K activations, bit-identical to dot_k; same
// contract as qmatmul_x86. kAvx2: qdot_k_avx2.cpp; kAvx512Vnni and kAvx512: the 512-bit VNNI
// kernel (qdot_k_avx512.cpp) for Q4_K, Q5_K, Q6_K, the AVX2 one for Q2_K and Q3_K. `isa` must be
// available.
void kmatmul_x86(QdotIsa isa, TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                 const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                 size_t r0, size_t r1);

// BF16 weights times BF16 activations through AVX512_BF16 (vdpbf16ps, bf16_avx512.cpp), same
// contract as qmatmul_x86 (rows n elements long). Call only where bf16dot_x86_available().
bool bf16dot_x86_available();
void matmul_bf16_x86(const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                     size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0,
                     size_t r1);

}  // namespace dip
