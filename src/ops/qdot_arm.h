// Hand-written Arm (aarch64) kernels for quantized weights (Q8_0, Q4_0) times Q8_0 activations,
// and K-quants times Q8_K:
// one body (qdot_arm_kernels.inc) compiled twice, with the Armv8.2 dot-product instructions
// (sdot) and with plain NEON widening multiplies for cores without them (Cortex-A53/A55 class
// and older). Highway 1.0.3 (Debian 12) has no op for sdot. Callers ask qdot_arm_best() first;
// where it says kNone (other architectures) the x86 or Highway kernels run.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/tensor_types.h"

namespace dip {

enum class ArmQdot { kNone, kNeon, kDotprod };

// Whether this build has the kernels for `isa` and the CPU runs them (hwcaps).
bool qdot_arm_available(ArmQdot isa);
// kDotprod where the CPU has it, else kNeon on aarch64, else kNone.
ArmQdot qdot_arm_best();
const char* arm_qdot_name(ArmQdot isa);

// y[b * y_stride + r] = dot(W[r], act[b]) for rows r in [r0, r1) and b < n_act. W is Q8_0 or
// Q4_0 (rows of n elements, wrow_bytes apart); activations are Q8_0 rows arow_bytes apart.
// `isa` must be available. Per row, blocks alternate between two float accumulators of four
// lanes and the lanes are added at the end, as ggml's Arm CPU backend sums pairs of blocks (it
// adds an odd last block after the lanes, here it joins the first accumulator).
void qmatmul_arm(ArmQdot isa, TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                 const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                 size_t r0, size_t r1);

// K-quant weights (Q4_K, Q5_K, Q6_K) times Q8_K activations, same contract; bit-identical to
// dot_k (exact integer sums per super-block, its FMA chain), in both variants.
void kmatmul_arm(ArmQdot isa, TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                 const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                 size_t r0, size_t r1);

// colsparse_q4_int8_ref16 (colsparse_q4_int8.h), bit for bit: y[32 b ..] += sixteen Q4_0
// columns' blocks b in [b0, b1) times x, in int8 with one scale per block. `isa` must be
// available.
void colsparse_q4_arm16(ArmQdot isa, const uint8_t* const* col, const float* x, float* y, size_t b0,
                        size_t b1);

}  // namespace dip
