// What the hand-written weight kernels (qdot_x86_kernels.inc, qdot_lanes_avx512.cpp,
// bf16_avx512.cpp, the Highway half-precision GEMV) share: the software prefetch distance of
// one-token products and the order in which a batched product visits its tiles. Header-only:
// each kernel file is compiled with its own target flags and instantiates these itself.
#pragma once
#include <cstddef>

namespace dip {

// Software prefetch distance along a weight row for one token. The weights stream once, and
// on the AVX-512 Xeon this was measured on the hardware prefetchers alone left about a third
// of the bandwidth unused (Q8_0/Q4_0 generation +33%, interleaved A/B on the 1 GB models;
// 2048 bytes beat 512 and 1024). bench/membw prefetches the same way.
constexpr size_t kWeightPrefetchBytes = 2048;

// A batched product of weight rows [r0, r1) with n_act activation rows, in the order that
// keeps caches warm: chunks of act_chunk activation rows stay in L2 while chunks of row_chunk
// weight rows stream past them; within a chunk, four activation rows at a time meet each
// weight tile (which stays in L1), the remainder one at a time. four(t, rr, re) and
// one(t, rr, re) handle activation rows t..t+3 (or t) against weight rows [rr, re).
template <class Four, class One>
inline void for_each_act_tile(size_t n_act, size_t r0, size_t r1, size_t act_chunk,
                              size_t row_chunk, Four&& four, One&& one) {
  for (size_t c0 = 0; c0 < n_act; c0 += act_chunk) {
    const size_t c1 = c0 + act_chunk < n_act ? c0 + act_chunk : n_act;
    for (size_t rr = r0; rr < r1; rr += row_chunk) {
      const size_t re = rr + row_chunk < r1 ? rr + row_chunk : r1;
      size_t t = c0;
      for (; t + 4 <= c1; t += 4) four(t, rr, re);
      for (; t < c1; ++t) one(t, rr, re);
    }
  }
}

// A product of a matrix repacked eight rows at a time (repack_x8.h): rows [r0, r1) (r0 a
// multiple of 8) against n_act activation rows. four(t, r) and one(t, r) handle activation rows
// t..t+3 (or t) against the group of eight rows at row r; one token streams the groups in order,
// batches visit them in for_each_act_tile's order.
template <class Four, class One>
inline void for_each_group_tile(size_t n_act, size_t r0, size_t r1, Four&& four, One&& one) {
  if (n_act == 1) {
    for (size_t r = r0; r < r1; r += 8) one(0, r);
    return;
  }
  for_each_act_tile(
      n_act, r0, r1, 32, 64,
      [&](size_t t, size_t rr, size_t re) {
        for (size_t r = rr; r < re; r += 8) four(t, r);
      },
      [&](size_t t, size_t rr, size_t re) {
        for (size_t r = rr; r < re; r += 8) one(t, r);
      });
}

}  // namespace dip
