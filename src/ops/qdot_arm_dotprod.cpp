// The Arm quantized kernels with the Armv8.2 dot-product instructions (sdot); the build compiles
// this file with -march=armv8.2-a+dotprod, and it runs only where the CPU reports them.
#if defined(__aarch64__) && defined(DIP_HAVE_ARM_QDOT)
#define DIP_ARM_DOTPROD 1
#define DIP_ARM_KERNEL qmatmul_arm_dotprod
#define DIP_ARM_KERNEL_K kmatmul_arm_dotprod
#define DIP_ARM_COLSPARSE_Q4 colsparse_q4_arm_dotprod
#include "ops/qdot_arm_kernels.inc"
#endif
