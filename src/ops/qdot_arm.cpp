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
void qmatmul_arm_dotprod(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                         const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y,
                         size_t y_stride, size_t r0, size_t r1);
void qmatmul_arm_neon(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                      const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y,
                      size_t y_stride, size_t r0, size_t r1);

bool qdot_arm_available(ArmQdot isa) {
  static const bool dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  return isa != ArmQdot::kDotprod || dotprod;  // NEON is part of every aarch64 CPU
}

ArmQdot qdot_arm_best() {
  return qdot_arm_available(ArmQdot::kDotprod) ? ArmQdot::kDotprod : ArmQdot::kNeon;
}

void qmatmul_arm(ArmQdot isa, TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n,
                 const uint8_t* acts, size_t arow_bytes, size_t n_act, float* y, size_t y_stride,
                 size_t r0, size_t r1) {
  if (isa == ArmQdot::kNone || !qdot_arm_available(isa) ||
      (wt != TensorType::Q8_0 && wt != TensorType::Q4_0)) {
    fail("internal: Arm kernel {} for {} not available", arm_qdot_name(isa),
         ggml_type_name(uint32_t(wt)));
  }
  if (isa == ArmQdot::kDotprod) {
    qmatmul_arm_dotprod(wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  } else {
    qmatmul_arm_neon(wt, w, wrow_bytes, n, acts, arow_bytes, n_act, y, y_stride, r0, r1);
  }
}
#else
bool qdot_arm_available(ArmQdot isa) { return isa == ArmQdot::kNone; }
ArmQdot qdot_arm_best() { return ArmQdot::kNone; }
void qmatmul_arm(ArmQdot isa, TensorType, const uint8_t*, size_t, size_t, const uint8_t*, size_t,
                 size_t, float*, size_t, size_t, size_t) {
  fail("internal: Arm kernel {} not in this build", arm_qdot_name(isa));
}
#endif

}  // namespace dip
