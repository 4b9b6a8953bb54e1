// Which of the Arm quantized kernels this CPU runs (hwcaps), and the call into them.
#include "ops/qdot_arm.h"

#if defined(__aarch64__) && defined(DIP_HAVE_ARM_QDOT)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "util/error.h"

namespace dip {

const char* arm_qdot_name(ArmQdot isa) {
  switch (isa) {
    case ArmQdot::kNeon:
      return "neon";
    case ArmQdot::kDotprod:
      return "dotprod";
    case ArmQdot::kNone:
      break;
  }
  return "none";
}

#if defined(__aarch64__) && defined(DIP_HAVE_ARM_QDOT)
// (type, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1), as qmatmul_arm.
using ArmKernelFn = void(TensorType, const uint8_t*, size_t, size_t, const uint8_t*, size_t, size_t,
                         float*, size_t, size_t, size_t);
// The two compilations of qdot_arm_kernels.inc.
ArmKernelFn qmatmul_arm_dotprod, qmatmul_arm_neon, kmatmul_arm_dotprod, kmatmul_arm_neon;
void colsparse_q4_arm_dotprod(const uint8_t* const*, const float*, float*, size_t, size_t);
void colsparse_q4_arm_neon(const uint8_t* const*, const float*, float*, size_t, size_t);

bool qdot_arm_available(ArmQdot isa) {
  static const bool dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  return isa != ArmQdot::kDotprod || dotprod;  // NEON is part of every aarch64 CPU
}

ArmQdot qdot_arm_best() {
  return qdot_arm_available(ArmQdot::kDotprod) ? ArmQdot::kDotprod : ArmQdot::kNeon;
}

namespace {
using ArmKernel = ArmKernelFn*;

// The variant of `isa` (sdot or plain NEON) for the weight types `serves` accepts.
ArmKernel arm_kernel(ArmQdot isa, TensorType wt, bool serves, ArmKernel dotprod, ArmKernel neon) {
  if (isa == ArmQdot::kNone || !qdot_arm_available(isa) || !serves) {
    fail("internal: Arm kernel {} for {} not available", arm_qdot_name(isa),
         ggml_type_name(uint32_t(wt)));
  }
  return isa == ArmQdot::kDotprod ? dotprod : neon;
}
}  // namespace

void qmatmul_arm(ArmQdot isa, TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                 const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                 size_t r0, size_t r1) {
  const bool serves = wt == TensorType::Q8_0 || wt == TensorType::Q4_0;
  arm_kernel(isa, wt, serves, qmatmul_arm_dotprod, qmatmul_arm_neon)(
      wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
}

void kmatmul_arm(ArmQdot isa, TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                 const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                 size_t r0, size_t r1) {
  arm_kernel(isa, wt, has_arm_k_kernel(wt), kmatmul_arm_dotprod, kmatmul_arm_neon)(
      wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
}

void colsparse_q4_arm16(ArmQdot isa, const uint8_t* const* col, const float* x, float* y, size_t b0,
                        size_t b1) {
  if (isa == ArmQdot::kNone || !qdot_arm_available(isa))
    fail("internal: Arm column kernel {} not available", arm_qdot_name(isa));
  (isa == ArmQdot::kDotprod ? colsparse_q4_arm_dotprod : colsparse_q4_arm_neon)(col, x, y, b0, b1);
}
#else
bool qdot_arm_available(ArmQdot isa) { return isa == ArmQdot::kNone; }
ArmQdot qdot_arm_best() { return ArmQdot::kNone; }
void qmatmul_arm(ArmQdot isa, TensorType, const uint8_t*, size_t, size_t, const uint8_t*, size_t,
                 size_t, float*, size_t, size_t, size_t) {
  fail("internal: Arm kernel {} not in this build", arm_qdot_name(isa));
}
void kmatmul_arm(ArmQdot isa, TensorType, const uint8_t*, size_t, size_t, const uint8_t*, size_t,
                 size_t, float*, size_t, size_t, size_t) {
  fail("internal: Arm kernel {} not in this build", arm_qdot_name(isa));
}
void colsparse_q4_arm16(ArmQdot isa, const uint8_t* const*, const float*, float*, size_t, size_t) {
  fail("internal: Arm column kernel {} not in this build", arm_qdot_name(isa));
}
#endif

}  // namespace dip
