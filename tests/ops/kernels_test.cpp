// Every kernel against its scalar reference, on fresh random inputs and odd sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ops/elementwise.h"
#include "ops/elementwise_simd.h"
#include "ops/matvec.h"
#include "ops/qdot_arm.h"
#include "ops/qdot_x86.h"
#include "ops/quant.h"
#include "ops/repack_x8.h"
#include "test_random.h"
#include "util/fp.h"
#include "util/threadpool.h"

namespace dip {
namespace {

const auto& kTypes = kAllTypes;

std::vector<size_t> sizes_for(TensorType t) {
  if (block_elems(t) > 1) return {32, 64, 96, 256, 4096, 32 * 37};
  return {1, 3, 7, 16, 17, 33, 100, 1023, 4096};
}

// Random weights (rows x n) quantized to t, their row size, and `batch` random activation
// rows encoded for t: the inputs of every matmul kernel test.
struct RandomProduct {
  size_t rb;
  std::vector<uint8_t> wq;
  EncodedActs a;
};

RandomProduct random_product(TensorType t, size_t rows, size_t batch, size_t n) {
  const auto w = randn(n * rows), x = randn(n * batch);
  RandomProduct p{row_bytes(t, n), std::vector<uint8_t>(rows * row_bytes(t, n)), {}};
  for (size_t r = 0; r < rows; ++r) quantize_row(t, &w[r * n], &p.wq[r * p.rb], n);
  encode_acts(t, x.data(), n, batch, n, p.a);
  return p;
}

TEST(Quant, DequantizeOfQuantizeIsClose) {
  for (TensorType t : kTypes) {
    for (size_t n : sizes_for(t)) {
      const auto x = randn(n);
      std::vector<uint8_t> q(row_bytes(t, n));
      quantize_row(t, x.data(), q.data(), n);
      std::vector<float> y(n);
      dequantize_row(t, q.data(), y.data(), n);
      float amax = 0;
      for (float v : x) amax = std::max(amax, std::fabs(v));
      const float tol = t == TensorType::F32    ? 0.0f
                        : t == TensorType::F16  ? amax * 1e-3f
                        : t == TensorType::BF16 ? amax * 8e-3f
                        : t == TensorType::Q8_0 ? amax / 127.0f
                                                : amax / 7.0f;
      for (size_t i = 0; i < n; ++i)
        ASSERT_LE(std::fabs(x[i] - y[i]), tol)
            << ggml_type_name(uint32_t(t)) << " n=" << n << " i=" << i;
    }
  }
}

TEST(Quant, Q4_0BlockLayoutMatchesGgml) {
  // Element j of a block sits in the low nibble of qs[j], element j+16 in the high nibble.
  BlockQ4_0 b{};
  b.d = f32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t((j & 0xf) | ((15 - j) << 4));
  float y[32];
  dequantize_row(TensorType::Q4_0, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * (j - 8));
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j - 8));
  }
}

TEST(Kernels, SimdDotMatchesScalarReference) {
  for (TensorType t : kTypes) {
    for (size_t n : sizes_for(t)) {
      const auto w = randn(n), x = randn(n);
      std::vector<uint8_t> wq(row_bytes(t, n));
      quantize_row(t, w.data(), wq.data(), n);
      EncodedActs a;
      encode_acts(t, x.data(), n, 1, n, a);
      const float ref = dot_ref(t, wq.data(), a.row(0), n);
      const float got = dot_simd(t, wq.data(), a.row(0), n);
      double mag = 0;
      for (size_t i = 0; i < n; ++i) mag += std::fabs(double(w[i]) * x[i]);
      EXPECT_NEAR(got, ref, 1e-5 * mag + 1e-6) << ggml_type_name(uint32_t(t)) << " n=" << n;
    }
  }
}

TEST(Kernels, MatmulMatchesScalarReference) {
  ThreadPool pool(3);
  for (TensorType t : kTypes) {
    for (size_t rows : {1u, 5u, 64u, 130u}) {
      for (size_t batch : {1u, 3u, 9u, 37u}) {
        const size_t n = block_elems(t) > 1 ? 96 : 77;
        auto [rb, wq, a] = random_product(t, rows, batch, n);
        std::vector<float> y(batch * rows, NAN);
        matmul(t, wq.data(), n, rows, a, y.data(), rows, &pool);
        for (size_t b = 0; b < batch; ++b) {
          for (size_t r = 0; r < rows; ++r) {
            const float ref = dot_ref(t, &wq[r * rb], a.row(b), n);
            ASSERT_NEAR(y[b * rows + r], ref, 1e-4 * (1 + std::fabs(ref)))
                << ggml_type_name(uint32_t(t));
          }
        }
      }
    }
  }
}

// A batched float product sums each (weight row, activation row) pair in one order, whatever
// tile, chunk or thread computes it: rows of a 70-row batch (two activation chunks of 4 KiB
// rows, tails in every row) equal the same rows multiplied in batches of 2 and 5, bit for bit.
TEST(Kernels, BatchedFloatProductsDoNotDependOnTiling) {
  for (TensorType t : {TensorType::F32, TensorType::F16}) {
    const size_t rows = 10, batch = 70, n = 2048 + 5;
    auto [rb, wq, a] = random_product(t, rows, batch, n);
    std::vector<float> full(batch * rows);
    ThreadPool pool(2);
    matmul(t, wq.data(), n, rows, a, full.data(), rows, &pool);
    for (size_t part : {2u, 5u}) {
      for (size_t b0 = 0; b0 + part <= batch; b0 += part) {
        EncodedActs sub = a;
        sub.rows = part;
        sub.data.assign(a.data.begin() + b0 * a.row_bytes,
                        a.data.begin() + (b0 + part) * a.row_bytes);
        std::vector<float> y(part * rows);
        matmul(t, wq.data(), n, rows, sub, y.data(), rows, nullptr);
        for (size_t i = 0; i < part * rows; ++i) {
          ASSERT_EQ(y[i], full[b0 * rows + i])
              << ggml_type_name(uint32_t(t)) << " batch of " << part << " from row " << b0;
        }
      }
    }
  }
}

// One quantized kernel under test: its name, whether it must equal the others of the same
// group bit for bit, and the call into it (rows [0, rows) of y, y_stride = rows).
struct QuantKernel {
  std::string name;
  bool bit_identical;
  std::function<void(TensorType, const uint8_t* w, size_t wrow_bytes, size_t n,
                     const EncodedActs& acts, size_t batch, float* y, size_t rows)>
      run;
};

// Each kernel on fresh random Q8_0 and Q4_0 products (Q8_0 weights include -128) against the
// scalar reference; those marked bit_identical also equal each other exactly.
void expect_quant_kernels_match_reference(const std::vector<QuantKernel>& kernels,
                                          std::initializer_list<size_t> lengths) {
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0}) {
    for (size_t rows : {1u, 6u, 67u}) {
      for (size_t batch : {1u, 5u, 37u}) {
        for (size_t n : lengths) {
          auto [rb, wq, a] = random_product(t, rows, batch, n);
          if (t == TensorType::Q8_0) reinterpret_cast<BlockQ8_0*>(wq.data())->qs[5] = -128;
          std::vector<float> first;
          for (const QuantKernel& k : kernels) {
            std::vector<float> y(batch * rows, NAN);
            k.run(t, wq.data(), rb, n, a, batch, y.data(), rows);
            for (size_t b = 0; b < batch; ++b) {
              for (size_t r = 0; r < rows; ++r) {
                const float ref = dot_ref(t, &wq[r * rb], a.row(b), n);
                ASSERT_NEAR(y[b * rows + r], ref, 1e-4 * (1 + std::fabs(ref)))
                    << k.name << " " << ggml_type_name(uint32_t(t)) << " n " << n;
              }
            }
            if (!k.bit_identical) continue;
            if (first.empty()) {
              first = y;
            } else {
              ASSERT_EQ(0, std::memcmp(first.data(), y.data(), y.size() * sizeof(float))) << k.name;
            }
          }
        }
      }
    }
  }
}

// Every x86 kernel this CPU runs (AVX2, AVX-512 VNNI), called directly, not only the one
// matmul picks. The two 256-bit kernels sum in the same order: bit-identical. The 512-bit ones
// sum in other orders (for Q8_0 llama.cpp's, tested bit for bit below): the reference check only.
TEST(Kernels, EveryX86QuantKernelMatchesScalarReference) {
  std::vector<QuantKernel> kernels;
  for (QdotIsa isa : {QdotIsa::kAvx2, QdotIsa::kAvx512Vnni, QdotIsa::kAvx512}) {
    if (!qdot_x86_available(isa)) continue;
    kernels.push_back({qdot_isa_name(isa), isa != QdotIsa::kAvx512,
                       [isa](TensorType t, const uint8_t* w, size_t rb, size_t n,
                             const EncodedActs& a, size_t batch, float* y, size_t rows) {
                         qmatmul_x86(isa, t, w, rb, n, a.data.data(), a.row_bytes, batch, y, rows,
                                     0, rows);
                       }});
  }
  if (kernels.empty()) GTEST_SKIP() << "no x86 quantized kernels on this CPU";
  expect_quant_kernels_match_reference(kernels, {160u, 256u});  // odd and even block counts
}

// Every Arm kernel this CPU runs (plain NEON everywhere on aarch64, sdot where hwcaps report it;
// under qemu both run), called directly: bit-identical to each other (the integer sums are
// exact, the lanes and the float order the same).
TEST(Kernels, EveryArmQuantKernelMatchesScalarReference) {
  std::vector<QuantKernel> kernels;
  for (ArmQdot isa : {ArmQdot::kNeon, ArmQdot::kDotprod}) {
    if (!qdot_arm_available(isa)) continue;
    kernels.push_back({arm_qdot_name(isa), true,
                       [isa](TensorType t, const uint8_t* w, size_t rb, size_t n,
                             const EncodedActs& a, size_t batch, float* y, size_t rows) {
                         qmatmul_arm(isa, t, w, rb, n, a.data.data(), a.row_bytes, batch, y, rows,
                                     0, rows);
                       }});
  }
  if (kernels.empty()) GTEST_SKIP() << "not an aarch64 build";
#if defined(__aarch64__)
  ASSERT_EQ(arm_qdot_name(qdot_arm_best()), kernels.back().name);
#endif
  expect_quant_kernels_match_reference(kernels, {32u, 160u, 256u});  // 1, odd and even blocks
}

// The AVX-512 kernels keep llama.cpp's per-row float order (one row at a time for one
// activation, two rows per register, not two blocks, for several): bit-identical to the scalar
// model of that order for both types, odd and even row counts (the last odd row pairs with
// itself), one and several activations, Q8_0 weights of -128 included.
TEST(Kernels, Avx512KernelsAreBitIdenticalToGgmlLaneOrder) {
  if (!qdot_x86_available(QdotIsa::kAvx512)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0}) {
    for (size_t rows : {1u, 3u, 8u, 13u, 70u}) {
      for (size_t batch : {1u, 2u, 5u, 37u}) {
        for (size_t n : {32u, 160u, 4096u}) {
          auto [rb, wq, a] = random_product(t, rows, batch, n);
          if (t == TensorType::Q8_0) reinterpret_cast<BlockQ8_0*>(wq.data())->qs[3] = -128;
          std::vector<float> y(batch * rows, NAN);
          qmatmul_x86(QdotIsa::kAvx512, t, wq.data(), rb, n, a.data.data(), a.row_bytes, batch,
                      y.data(), rows, 0, rows);
          for (size_t b = 0; b < batch; ++b) {
            for (size_t r = 0; r < rows; ++r) {
              const float ref = dot_ggml_lane_order_ref(
                  t, &wq[r * rb], reinterpret_cast<const BlockQ8_0*>(a.row(b)), n);
              ASSERT_EQ(ref, y[b * rows + r]) << ggml_type_name(uint32_t(t)) << " rows=" << rows
                                              << " batch=" << batch << " n=" << n << " r=" << r;
            }
          }
        }
      }
    }
  }
}

// A Q4_0 kernel in ggml's repacked order, called as two threads would call it (rows [0, split)
// and [split, rows)) on fresh random products: bit-identical to the order's scalar model (and
// near the exact dot) for row counts of one tile and several, one and several activations.
// prepare(wq, rows, n) gives the weights the kernel reads; run(w, rb, n, acts, batch, y, rows,
// r0, r1) multiplies; split(rows) is where the second slice starts.
void expect_q4_0_rows_order(
    const std::function<std::vector<uint8_t>(const std::vector<uint8_t>&, size_t, size_t)>& prepare,
    const std::function<void(const uint8_t*, size_t, size_t, const EncodedActs&, size_t, float*,
                             size_t, size_t, size_t)>& run,
    const std::function<size_t(size_t)>& split, std::initializer_list<size_t> row_counts) {
  const TensorType t = TensorType::Q4_0;
  for (size_t rows : row_counts) {
    for (size_t batch : {1u, 3u, 4u, 5u, 37u}) {
      for (size_t n : {32u, 160u, 4096u}) {
        auto [rb, wq, a] = random_product(t, rows, batch, n);
        const std::vector<uint8_t> w = prepare(wq, rows, n);
        std::vector<float> y(batch * rows, NAN);
        run(w.data(), rb, n, a, batch, y.data(), rows, 0, split(rows));
        run(w.data(), rb, n, a, batch, y.data(), rows, split(rows), rows);
        for (size_t b = 0; b < batch; ++b) {
          for (size_t r = 0; r < rows; ++r) {
            const float ref =
                dot_q4_0_rows_order_ref(reinterpret_cast<const BlockQ4_0*>(&wq[r * rb]),
                                        reinterpret_cast<const BlockQ8_0*>(a.row(b)), n);
            ASSERT_EQ(ref, y[b * rows + r])
                << "rows=" << rows << " batch=" << batch << " n=" << n << " r=" << r;
            ASSERT_NEAR(ref, dot_ref(t, &wq[r * rb], a.row(b), n), 1e-4 * (1 + std::fabs(ref)));
          }
        }
      }
    }
  }
}

// The AVX2 kernel on Q4_0 repacked eight rows at a time; slices start at a group of 8.
TEST(Kernels, RepackedQ4_0KernelIsBitIdenticalToGgmlRepackedOrder) {
  if (!x8_available(TensorType::Q4_0)) GTEST_SKIP() << "no AVX2 on this CPU";
  expect_q4_0_rows_order(
      [](const std::vector<uint8_t>& wq, size_t rows, size_t n) {
        std::vector<uint8_t> packed(wq.size());
        repack_x8(TensorType::Q4_0, wq.data(), rows, n, packed.data());
        return packed;
      },
      [](const uint8_t* w, size_t, size_t n, const EncodedActs& a, size_t batch, float* y,
         size_t rows, size_t r0, size_t r1) {
        qmatmul_x8(TensorType::Q4_0, w, n, a.data.data(), a.row_bytes, batch, y, rows, r0, r1);
      },
      [](size_t rows) { return 8 * (rows / 16); }, {8u, 16u, 24u, 136u});
}

// The 16-row AVX-512 kernel on the GGUF layout: row counts below, at and above a tile of 16
// (masked last tile), slices that start inside a tile.
TEST(Kernels, Avx512Q4_0RowsKernelIsBitIdenticalToGgmlRepackedOrder) {
  if (!qdot_x86_available(QdotIsa::kAvx512)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  expect_q4_0_rows_order([](const std::vector<uint8_t>& wq, size_t, size_t) { return wq; },
                         [](const uint8_t* w, size_t rb, size_t n, const EncodedActs& a,
                            size_t batch, float* y, size_t rows, size_t r0, size_t r1) {
                           qmatmul_q4_0_rows_x86(w, rb, n, a.data.data(), a.row_bytes, batch, y,
                                                 rows, r0, r1);
                         },
                         [](size_t rows) { return rows / 2; }, {8u, 16u, 24u, 40u, 136u});
}

// The AVX512_BF16 kernel called directly: sizes below, at and above its unrolled steps of
// 32 x 4 elements (masked tails), one and several activation rows, odd row counts.
TEST(Kernels, Avx512Bf16KernelMatchesScalarReference) {
  if (!bf16dot_x86_available()) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  const TensorType t = TensorType::BF16;
  for (size_t n : {5u, 32u, 77u, 128u, 200u, 4096u + 13u}) {
    for (size_t rows : {1u, 6u, 13u}) {
      for (size_t batch : {1u, 2u, 7u, 21u}) {
        auto [rb, wq, a] = random_product(t, rows, batch, n);
        std::vector<float> y(batch * rows, NAN);
        matmul_bf16_x86(wq.data(), rb, n, a.data.data(), a.row_bytes, batch, y.data(), rows, 0,
                        rows);
        for (size_t b = 0; b < batch; ++b) {
          for (size_t r = 0; r < rows; ++r) {
            const float ref = dot_ref(t, &wq[r * rb], a.row(b), n);
            ASSERT_NEAR(y[b * rows + r], ref, 1e-4 * (1 + std::fabs(ref)))
                << n << " " << rows << " " << batch;
          }
        }
      }
    }
  }
}

// Q8_0 weights may hold -128 (ggml's quantizer never writes it, other tools may): the sign
// trick of the VNNI kernel must stay exact there.
TEST(Kernels, Q8WeightsWithMinus128) {
  const size_t n = 64, rows = 7;
  std::vector<BlockQ8_0> w(rows * n / kQK8_0);
  std::uniform_int_distribution<int> q(-128, 127);
  for (auto& b : w) {
    b.d = f32_to_fp16(0.01f);
    for (auto& v : b.qs) v = int8_t(q(rng()));
    b.qs[3] = -128;
  }
  const auto x = randn(n * 2);
  EncodedActs a;
  encode_acts(TensorType::Q8_0, x.data(), n, 2, n, a);
  std::vector<float> y(2 * rows);
  matmul(TensorType::Q8_0, w.data(), n, rows, a, y.data(), rows, nullptr);
  for (size_t b = 0; b < 2; ++b)
    for (size_t r = 0; r < rows; ++r) {
      const float ref = dot_ref(TensorType::Q8_0, &w[r * n / kQK8_0], a.row(b), n);
      EXPECT_NEAR(y[b * rows + r], ref, 1e-5 * (1 + std::fabs(ref)));
    }
}

// The SIMD element-wise steps are bit-identical to their scalar references (this CPU has FMA),
// including lanes whose exponent leaves the fast path (large |g|).
TEST(Elementwise, SimdMatchesScalarBitExactly) {
  for (size_t n : {1u, 15u, 77u, 4096u}) {
    auto g = randn(n, 6.0f);
    const auto u = randn(n);
    if (n > 20) g[3] = 150.0f, g[17] = -150.0f;  // exp(-g) overflows / underflows
    std::vector<float> ref(n), got(n);
    swiglu(g.data(), u.data(), ref.data(), n);
    swiglu_simd(g.data(), u.data(), got.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], ref[i]) << "swiglu i=" << i << " g=" << g[i];
  }
  for (size_t n : {32u, 96u, 4096u}) {
    auto x = randn(n, 3.0f);
    for (size_t i = 0; i < 32; ++i) x[i] = 0.0f;  // an all-zero block
    std::vector<BlockQ8_0> ref(n / 32), got(n / 32);
    quantize_row_q8_0_act(x.data(), ref.data(), n);
    quantize_row_q8_0_act_simd(x.data(), got.data(), n);
    ASSERT_EQ(0, std::memcmp(ref.data(), got.data(), ref.size() * sizeof(BlockQ8_0))) << "n=" << n;
  }
  for (bool bf16 : {false, true}) {
    const size_t n = 133;
    const auto x = randn(n, 100.0f);
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) h[i] = bf16 ? f32_to_bf16(x[i]) : f32_to_fp16(x[i]);
    std::vector<float> ref(n), got(n);
    dequantize_row(bf16 ? TensorType::BF16 : TensorType::F16, h.data(), ref.data(), n);
    decode_half_row(bf16, h.data(), got.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], ref[i]);
  }
  // The attention softmax's steps: scores far below the maximum (exp underflows to subnormals
  // and zero, the lanes the vector code hands to the scalar one), probabilities whose f16 copy
  // is subnormal or rounds to a tie.
  for (size_t n : {1u, 7u, 16u, 77u, 600u}) {
    auto x = randn(n, 20.0f);
    if (n > 20) x[5] = -200.0f, x[9] = -95.0f, x[13] = 1e-30f;
    const float mx_ref = *std::max_element(x.begin(), x.end());
    ASSERT_EQ(max_simd(x.data(), n), mx_ref) << "n=" << n;
    std::vector<float> ref = x, got = x;
    for (float& v : ref) v = expf_ggml(v - mx_ref);
    exp_shifted_simd(got.data(), n, mx_ref);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], ref[i]) << "exp n=" << n << " i=" << i;
    const float inv = 0.37f;
    std::vector<float> r_ref(n), r_got(n);
    for (size_t i = 0; i < n; ++i) r_ref[i] = round_fp16(ref[i] * inv);
    round_fp16_simd(ref.data(), inv, r_got.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(r_got[i], r_ref[i]) << "fp16 n=" << n << " i=" << i;
  }
  {
    // f16 roundings of every kind: values between neighbouring halves (every 7th pair of the
    // finite range, ties included).
    std::vector<float> v;
    for (uint32_t h = 0; h < 0x7bff; h += 7) {
      const float a = fp16_to_f32(uint16_t(h)), b = fp16_to_f32(uint16_t(h + 1));
      v.push_back(a), v.push_back(-(a + b) / 2), v.push_back(a + (b - a) * 0.3f);
    }
    std::vector<float> r_ref(v.size()), r_got(v.size());
    for (size_t i = 0; i < v.size(); ++i) r_ref[i] = round_fp16(v[i]);
    round_fp16_simd(v.data(), 1.0f, r_got.data(), v.size());
    for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(r_got[i], r_ref[i]) << v[i];
  }
  {
    // Encoding to F16 bits as f32_to_fp16: the same roundings, overflow to infinity, values
    // that round to a subnormal or to zero, signed zeros and infinities; NaN stays NaN.
    std::vector<float> v = randn(301, 30000.0f);
    for (uint32_t h = 0; h < 0x7bff; h += 5) {
      const float a = fp16_to_f32(uint16_t(h)), b = fp16_to_f32(uint16_t(h + 1));
      v.push_back(a), v.push_back(-(a + b) / 2), v.push_back(a + (b - a) * 0.7f);
    }
    for (float s : {65504.0f, 65519.0f, 65520.0f, 1e9f, 3e-8f, 2.9e-8f, 6e-8f, 1e-30f, 0.0f, -0.0f,
                    INFINITY, -INFINITY})
      v.push_back(s), v.push_back(-s);
    v.push_back(NAN);
    std::vector<uint16_t> got(v.size());
    encode_f16_row(v.data(), got.data(), v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      if (std::isnan(v[i])) {
        EXPECT_TRUE(std::isnan(fp16_to_f32(got[i])));
      } else {
        ASSERT_EQ(got[i], f32_to_fp16(v[i])) << v[i];
      }
    }
  }
  EXPECT_EQ(max_simd(nullptr, 0), -INFINITY);
}

TEST(Elementwise, RmsNormSoftmaxSwiglu) {
  const size_t n = 77;
  const auto x = randn(n, 3.0f), w = randn(n);
  std::vector<float> y(n);
  rms_norm(x.data(), w.data(), y.data(), n, 1e-5f);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double scale = 1.0 / std::sqrt(ss / n + 1e-5);
  for (size_t i = 0; i < n; ++i)
    EXPECT_NEAR(y[i], x[i] * scale * w[i], 1e-5 * (1 + std::fabs(y[i])));

  std::vector<float> s = x;
  softmax(s.data(), n);
  double mx = -1e30, sum = 0;
  for (float v : x) mx = std::max<double>(mx, v);
  for (float v : x) sum += std::exp(v - mx);
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(s[i], std::exp(x[i] - mx) / sum, 1e-6);

  const auto g = randn(n, 4.0f), u = randn(n);
  std::vector<float> h(n);
  swiglu(g.data(), u.data(), h.data(), n);
  for (size_t i = 0; i < n; ++i)
    EXPECT_NEAR(h[i], g[i] / (1 + std::exp(-double(g[i]))) * u[i], 1e-5 * (1 + std::fabs(h[i])));
}

TEST(Elementwise, ExpApproximationIsWithinTwoUlp) {
  std::uniform_real_distribution<float> d(-100.0f, 80.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = d(rng());
    const float ref = std::exp(x), got = expf_ggml(x);
    ASSERT_NEAR(got, ref, 2.5f * std::fabs(ref) * 1.2e-7f + 1e-38f) << x;
  }
  EXPECT_EQ(expf_ggml(-INFINITY), 0.0f);
}

TEST(Elementwise, RopeRotatesPairsAndKeepsNorm) {
  const uint32_t hd = 64;
  for (bool neox : {false, true}) {
    RopeParams p;
    p.n_rot = hd;
    p.neox = neox;
    std::vector<float> c(hd / 2), s(hd / 2);
    rope_cache(p, 17, c.data(), s.data());
    auto x = randn(hd);
    auto y = x;
    rope_apply(p, c.data(), s.data(), y.data());
    for (uint32_t i = 0; i < hd / 2; ++i) {
      const uint32_t a = neox ? i : 2 * i, b = neox ? i + hd / 2 : 2 * i + 1;
      const double th = 17.0 * std::pow(10000.0, -2.0 * i / hd);
      EXPECT_NEAR(y[a], x[a] * std::cos(th) - x[b] * std::sin(th), 2e-4);
      EXPECT_NEAR(y[b], x[a] * std::sin(th) + x[b] * std::cos(th), 2e-4);
    }
  }
}

}  // namespace
}  // namespace dip
