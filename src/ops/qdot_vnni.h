// Hand-written x86 AVX-512 VNNI kernels for quantized weights (see qdot_vnni.cpp for why
// these are not Highway code). Callers check qdot_vnni_available() first; elsewhere the
// Highway kernels in matvec.cpp run.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/tensor_types.h"

namespace dip {

// True when this build has the kernels and the CPU has AVX-512 VNNI/BW/VL, F16C and FMA.
bool qdot_vnni_available();

// y[b * y_stride + r] = dot(W[r], act[b]) for rows r in [r0, r1) and b < n_act. W is Q8_0 or
// Q4_0 (rows of n elements, wrow_bytes apart); activations are Q8_0 rows arow_bytes apart.
void qmatmul_vnni(TensorType wt, const uint8_t* w, size_t wrow_bytes, size_t n, const uint8_t* acts,
                  size_t arow_bytes, size_t n_act, float* y, size_t y_stride, size_t r0, size_t r1);

}  // namespace dip
