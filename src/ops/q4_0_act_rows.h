// What the Q4_0 kernels in ggml's repacked order (qdot_q4_0_rows_avx512.cpp,
// qdot_q4_0_x8_avx2.cpp) keep per activation row and block: the kernel's own copy of the
// quants (Quants, one per block, in the order its loads want), 8 * the sum of the quants (the
// nibbles' -8 offset, taken off the exact integer sums) and the scale as a float. Header-only:
// each kernel file is compiled with its own target flags.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/quant.h"
#include "ops/tensor_types.h"

namespace dip {

template <class Quants>
struct Q4ActRows {
  std::vector<Quants> q;
  std::vector<int32_t> off8;
  std::vector<float> d;
  size_t nb = 0;
  // Sizes every array for n_act rows of n_blocks blocks (arb bytes apart in `acts`) and fills
  // off8 and d; the kernel fills q.
  void size_for(const uint8_t* acts, size_t arb, size_t n_act, size_t n_blocks) {
    nb = n_blocks;
    q.resize(n_act * nb);
    off8.resize(n_act * nb);
    d.resize(n_act * nb);
    for (size_t t = 0; t < n_act; ++t) {
      q8_0_offsets_and_scales(reinterpret_cast<const BlockQ8_0*>(acts + t * arb), nb, &off8[t * nb],
                              &d[t * nb]);
    }
  }
};

}  // namespace dip
