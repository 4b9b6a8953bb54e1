// Q4_0 column-sparse products in int8, sixteen kept columns at a time: the AVX-512 VNNI kernel
// (colsparse_q4_vnni.cpp), the AVX2 one (colsparse_q4_avx2.cpp), the Arm ones (qdot_arm.h), their
// common scalar model, and which one runs on this CPU.
#pragma once
#include <cstddef>
#include <cstdint>

namespace dip {

// Whether this build has the kernel and the CPU runs it (AVX-512 F/BW/VL, VNNI, VBMI; CPUID).
bool colsparse_q4_vnni_available();

// y[32 b .. 32 b + 32) += sum over c < 16 of x[c] * column c's block b, for blocks b in [b0, b1),
// columns of Q4_0 blocks along the output. Per block the 16 coefficients x[c] * d share one int8
// scale (relative error about 1/254 of the block's largest coefficient per term, as llama.cpp's
// Q8_0 activations). Call only where colsparse_q4_vnni_available().
void colsparse_q4_vnni16(const uint8_t* const* col, const float* x, float* y, size_t b0, size_t b1);

// The same contract with AVX2 (maddubs), for x86 CPUs without AVX-512 VNNI and VBMI. Call only
// where colsparse_q4_avx2_available() (AVX2, FMA, F16C; CPUID).
bool colsparse_q4_avx2_available();
void colsparse_q4_avx2_16(const uint8_t* const* col, const float* x, float* y, size_t b0,
                          size_t b1);

// The int8 kernel of this CPU with colsparse_q4_vnni16's contract: AVX-512 VNNI, else AVX2 on
// x86, the Arm sdot or NEON one on aarch64 (qdot_arm.h), nullptr where none runs (float kernels
// then).
using ColsparseQ4Int8Fn = void (*)(const uint8_t* const* col, const float* x, float* y, size_t b0,
                                   size_t b1);
ColsparseQ4Int8Fn colsparse_q4_int8_kernel();

// Their scalar model, the same arithmetic step by step (every kernel must match it bit for bit):
// per block, coef[c] = x[c] * d[c] in float, amax = max |coef|, k[c] = coef[c] * (127 / amax)
// rounded to nearest even, then y += (amax / 127) * sum of k[c] * (q - 8) as one fused
// multiply-add. (colsparse.cpp: compiled for every CPU.)
void colsparse_q4_int8_ref16(const uint8_t* const* col, const float* x, float* y, size_t b0,
                             size_t b1);

}  // namespace dip
