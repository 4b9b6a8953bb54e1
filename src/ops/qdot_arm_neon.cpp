// The Arm quantized kernels for cores without the dot-product instructions: widening NEON
// multiplies (every aarch64 CPU has NEON).
#if defined(__aarch64__) && defined(DIP_HAVE_ARM_QDOT)
#define DIP_ARM_KERNEL qmatmul_arm_neon
#define DIP_ARM_KERNEL_K kmatmul_arm_neon
#define DIP_ARM_COLSPARSE_Q4 colsparse_q4_arm_neon
#include "ops/qdot_arm_kernels.inc"
#endif
