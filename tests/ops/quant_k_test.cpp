// K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K): quantize/dequantize, the Q8_K activation format, the
// dot product against an independent float computation, the matmul through the engine's
// dispatch, and every SIMD kernel against the scalar dot on random blocks.
#include "ops/quant_k.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <random>
#include <vector>

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

constexpr TensorType kKTypes[] = {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                  TensorType::Q5_K, TensorType::Q6_K};
// The types with x86 kernels (all) and Arm kernels (has_arm_k_kernel).
constexpr std::initializer_list<TensorType> kX86KTypes = {
    TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
constexpr std::initializer_list<TensorType> kArmKTypes = {TensorType::Q4_K, TensorType::Q5_K,
                                                          TensorType::Q6_K};

std::vector<float> dequantized(TensorType t, const std::vector<uint8_t>& q, size_t n) {
  std::vector<float> y(n);
  dequantize_row(t, q.data(), y.data(), n);
  return y;
}

std::vector<uint8_t> quantized(TensorType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(t, x.size()));
  quantize_row(t, x.data(), q.data(), x.size());
  return q;
}

TEST(QuantK, DequantizeOfQuantizeIsClose) {
  for (TensorType t : kKTypes) {
    for (size_t n : {256u, 512u, 256u * 7}) {
      const auto x = randn(n);
      const auto y = dequantized(t, quantized(t, x), n);
      double err = 0, pow = 0;
      for (size_t b = 0; b < n; b += kQK_K) {
        float amax = 0;
        for (size_t i = b; i < b + kQK_K; ++i) amax = std::max(amax, std::fabs(x[i]));
        // One quantization step of the widest sub-block, with room for the scale's rounding.
        // Q3_K: a quarter of the largest magnitude, plus the level clipped at +4 -> 3.
        const float step = t == TensorType::Q2_K   ? 2 * amax / 3
                           : t == TensorType::Q3_K ? amax / 3
                           : t == TensorType::Q4_K ? 2 * amax / 15
                           : t == TensorType::Q5_K ? 2 * amax / 31
                                                   : amax / 31;
        for (size_t i = b; i < b + kQK_K; ++i) {
          ASSERT_LE(std::fabs(x[i] - y[i]), step) << ggml_type_name(uint32_t(t)) << " i=" << i;
          err += (x[i] - y[i]) * (x[i] - y[i]);
          pow += x[i] * x[i];
        }
      }
      // The typical error is far below the bound: 2, 3, 4, 5 and 6 bits per weight.
      const double rel = std::sqrt(err / pow);
      const double want = t == TensorType::Q2_K   ? 0.45
                          : t == TensorType::Q3_K ? 0.22
                          : t == TensorType::Q4_K ? 0.12
                          : t == TensorType::Q5_K ? 0.06
                                                  : 0.04;
      EXPECT_LT(rel, want) << ggml_type_name(uint32_t(t));
    }
  }
}

// The SIMD quantizer the engine calls equals the scalar one byte for byte: random blocks, a
// block whose largest magnitude appears twice with both signs (the first decides the sign of
// the scale), one of exact halves (-127 largest, so the scale is 1: ties to even), and zeros.
TEST(QuantK, Q8KSimdIsBitIdenticalToScalar) {
  auto x = randn(6 * 256);
  x[256 + 40] = 7.5f;
  x[256 + 41] = -7.5f;
  for (size_t i = 0; i < 256; ++i) x[512 + i] = float(int(i % 200) - 100) + 0.5f;
  x[512 + 17] = -127.0f;
  for (size_t i = 0; i < 256; ++i) x[768 + i] = 0.0f;
  x[1024 + 255] = 50.0f;  // the largest magnitude last in its block
  std::vector<BlockQ8K> ref(6), got(6);
  std::memset(got.data(), 0xAB, got.size() * sizeof(BlockQ8K));
  quantize_row_q8_K(x.data(), ref.data(), x.size());
  quantize_row_q8_K_simd(x.data(), got.data(), x.size());
  for (size_t b = 0; b < 6; ++b)
    EXPECT_EQ(0, std::memcmp(&ref[b], &got[b], sizeof(BlockQ8K))) << "block " << b;
  EXPECT_LT(ref[1].d, 0.0f);      // +7.5 came first: iscale -127 / 7.5
  EXPECT_EQ(ref[2].qs[0], -100);  // -99.5 at scale 1 rounds to even
}

TEST(QuantK, Q8KIsGgmlsActivationFormat) {
  auto x = randn(512);
  x[300] = -9.0f;  // the second block's largest magnitude is negative: its scale is positive
  std::vector<BlockQ8K> q(2);
  quantize_row_q8_K(x.data(), q.data(), 512);
  for (size_t b = 0; b < 2; ++b) {
    float amax = 0, max = 0;
    for (size_t i = 0; i < 256; ++i) {
      if (std::fabs(x[256 * b + i]) > amax) {
        amax = std::fabs(x[256 * b + i]);
        max = x[256 * b + i];
      }
    }
    const float iscale = -127.0f / max;
    EXPECT_EQ(q[b].d, 1.0f / iscale);
    for (size_t i = 0; i < 256; ++i) {
      EXPECT_EQ(q[b].qs[i], std::min(127, int(std::nearbyint(iscale * x[256 * b + i]))));
    }
    for (size_t j = 0; j < 16; ++j) {
      int s = 0;
      for (size_t i = 0; i < 16; ++i) s += q[b].qs[16 * j + i];
      EXPECT_EQ(q[b].bsums[j], s);
    }
  }
  EXPECT_GT(q[1].d, 0.0f);
  std::vector<float> zeros(256, 0.0f);
  quantize_row_q8_K(zeros.data(), q.data(), 256);
  EXPECT_EQ(q[0].d, 0.0f);
  for (int v : q[0].qs) EXPECT_EQ(v, 0);
  for (int v : q[0].bsums) EXPECT_EQ(v, 0);
}

// The integer dot (sub-block scales, mins through the activation's sums) against the float dot
// of the two dequantized rows.
TEST(QuantK, DotMatchesDequantizedProduct) {
  for (TensorType t : kKTypes) {
    for (size_t n : {256u, 1024u, 256u * 11}) {
      const auto w = randn(n), x = randn(n);
      const auto wq = quantized(t, w);
      std::vector<BlockQ8K> a(n / kQK_K);
      quantize_row_q8_K(x.data(), a.data(), n);
      const auto wd = dequantized(t, wq, n);
      double want = 0, mag = 0;
      for (size_t i = 0; i < n; ++i) {
        const double xi = double(a[i / kQK_K].d) * a[i / kQK_K].qs[i % kQK_K];
        want += double(wd[i]) * xi;
        mag += std::fabs(double(wd[i]) * xi);
      }
      EXPECT_NEAR(dot_k(t, wq.data(), a.data(), n), want, 1e-5 * mag)
          << ggml_type_name(uint32_t(t));
      EXPECT_EQ(dot_ref(t, wq.data(), a.data(), n), dot_k(t, wq.data(), a.data(), n));
    }
  }
}

// Q4_K's layout byte by byte: scales j < 4 in the low 6 bits of bytes j (scale) and j + 4 (min),
// j >= 4 split into the nibbles of byte j + 4 and the top bits of bytes j - 4 and j; 64 elements
// per 32 bytes of qs, low nibbles first.
TEST(QuantK, Q4KBlockLayoutMatchesGgml) {
  BlockQ4K b{};
  b.d = f32_to_fp16(1.0f);
  b.dmin = f32_to_fp16(0.5f);
  const uint8_t sc[8] = {1, 2, 3, 4, 21, 37, 50, 63}, mn[8] = {0, 5, 9, 13, 17, 33, 49, 62};
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = uint8_t(mn[j] | ((mn[j + 4] >> 4) << 6));
    b.scales[j + 8] = uint8_t((sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4));
  }
  for (int i = 0; i < 128; ++i) b.qs[i] = uint8_t((i % 16) | ((15 - i % 16) << 4));
  float y[256];
  dequantize_row(TensorType::Q4_K, &b, y, 256);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int lo = l % 16, hi = 15 - l % 16;
      EXPECT_EQ(y[64 * c + l], float(sc[2 * c]) * lo - 0.5f * mn[2 * c]) << c << " " << l;
      EXPECT_EQ(y[64 * c + 32 + l], float(sc[2 * c + 1]) * hi - 0.5f * mn[2 * c + 1])
          << c << " " << l;
    }
  }
}

TEST(QuantK, MatmulMatchesScalarReference) {
  ThreadPool pool(3);
  for (TensorType t : kKTypes) {
    EXPECT_EQ(activation_type(t), TensorType::Q8_K);
    for (size_t rows : {1u, 7u, 130u}) {
      for (size_t batch : {1u, 4u, 9u}) {
        const size_t n = 512;
        const auto w = randn(n * rows), x = randn(n * batch);
        const size_t rb = row_bytes(t, n);
        std::vector<uint8_t> wq(rows * rb);
        for (size_t r = 0; r < rows; ++r) quantize_row(t, &w[r * n], &wq[r * rb], n);
        EncodedActs a;
        encode_acts(t, x.data(), n, batch, n, a);
        std::vector<float> y(batch * rows, NAN);
        matmul(t, wq.data(), n, rows, a, y.data(), rows, &pool);
        for (size_t b = 0; b < batch; ++b)
          for (size_t r = 0; r < rows; ++r)
            ASSERT_EQ(y[b * rows + r], dot_ref(t, &wq[r * rb], a.row(b), n))
                << ggml_type_name(uint32_t(t));
      }
    }
  }
}

// A K-quant kernel with qmatmul's contract: (type, w, wrow_bytes, n, acts, arow_bytes, n_act, y,
// y_stride, r0, r1).
using KKernel = std::function<void(TensorType, const uint8_t*, size_t, size_t, const uint8_t*,
                                   size_t, size_t, float*, size_t, size_t, size_t)>;

// `kernel` on raw random blocks (every bit pattern of levels, packed scales, mins and fifth/sixth
// bits; activations over the whole int8 range, -128 included) against dot_k, bit for bit, for 1
// to 6 activation rows (passes of four and a remainder) and 37 (more than one tile of rows and
// activations in the batched order); `rows` weight rows of each of `types`.
void expect_k_kernel_bit_identical(const char* name, const KKernel& kernel,
                                   std::initializer_list<TensorType> types = kX86KTypes,
                                   size_t rows = 70) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-2.0f, 2.0f);
  for (TensorType t : types) {
    const size_t n = 768, rb = row_bytes(t, n), nb = n / kQK_K;
    std::vector<uint8_t> wq(rows * rb);
    for (auto& v : wq) v = uint8_t(byte(rng()));
    // Finite F16 scales: d (and dmin) of each super-block, where each type keeps them.
    const size_t bb = rb / nb;
    for (size_t r = 0; r < rows; ++r) {
      for (size_t i = 0; i < nb; ++i) {
        uint8_t* blk = &wq[r * rb + i * bb];
        const uint16_t d = f32_to_fp16(scale(rng())), dmin = f32_to_fp16(scale(rng()));
        if (t == TensorType::Q6_K || t == TensorType::Q3_K) {
          std::memcpy(blk + bb - 2, &d, 2);
        } else if (t == TensorType::Q2_K) {
          std::memcpy(blk + bb - 4, &d, 2);
          std::memcpy(blk + bb - 2, &dmin, 2);
        } else {
          std::memcpy(blk, &d, 2);
          std::memcpy(blk + 2, &dmin, 2);
        }
      }
    }
    for (size_t batch : {1u, 2u, 3u, 4u, 5u, 6u, 37u}) {
      std::vector<BlockQ8K> acts(batch * nb);
      for (auto& a : acts) {
        a.d = scale(rng());
        for (int j = 0; j < 16; ++j) {
          int sum = 0;
          for (int l = 0; l < 16; ++l) sum += a.qs[16 * j + l] = int8_t(byte(rng()) - 128);
          a.bsums[j] = int16_t(sum);
        }
      }
      std::vector<float> y(batch * rows, NAN);
      kernel(t, wq.data(), rb, n, reinterpret_cast<const uint8_t*>(acts.data()),
             sizeof(BlockQ8K) * nb, batch, y.data(), rows, 0, rows);
      for (size_t b = 0; b < batch; ++b)
        for (size_t r = 0; r < rows; ++r)
          ASSERT_EQ(y[b * rows + r], dot_k(t, &wq[r * rb], &acts[b * nb], n))
              << name << ", " << ggml_type_name(uint32_t(t)) << " row " << r << " of " << rows
              << ", activation " << b << " of " << batch;
    }
  }
}

// The portable Highway kernel (matvec.cpp's DotK; Q2_K's and Q3_K's on Arm), for every K-quant:
// through the engine's one-row dot, which every CPU runs.
TEST(QuantK, HighwayKernelIsBitIdenticalToScalarOnRandomBlocks) {
  expect_k_kernel_bit_identical(
      "highway",
      [](TensorType t, const uint8_t* w, size_t rb, size_t n, const uint8_t* a, size_t arb,
         size_t na, float* y, size_t ys, size_t r0, size_t r1) {
        for (size_t b = 0; b < na; ++b)
          for (size_t r = r0; r < r1; ++r) y[b * ys + r] = dot_simd(t, w + r * rb, a + b * arb, n);
      },
      {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K},
      20);
}

// Q2_K's and Q3_K's layouts element by element against ggml's dequantization loops written out
// (element 128 h + 32 k + l in bits 2k of qs[32 h + l]; Q3_K's third bit in bit 4 h + k of
// hmask[l], its scales' low nibbles in bytes 0-7 and high bits in bytes 8-11).
TEST(QuantK, Q2KAndQ3KBlockLayoutsMatchGgml) {
  std::uniform_int_distribution<int> byte(0, 255);
  BlockQ2K b2;
  BlockQ3K b3;
  for (auto* blk : {reinterpret_cast<uint8_t*>(&b2), reinterpret_cast<uint8_t*>(&b3)}) {
    const size_t size = blk == reinterpret_cast<uint8_t*>(&b2) ? sizeof(b2) : sizeof(b3);
    for (size_t i = 0; i < size; ++i) blk[i] = uint8_t(byte(rng()));
  }
  b2.d = f32_to_fp16(0.75f), b2.dmin = f32_to_fp16(-0.25f), b3.d = f32_to_fp16(0.5f);
  float y2[256], y3[256];
  dequantize_row(TensorType::Q2_K, &b2, y2, 256);
  dequantize_row(TensorType::Q3_K, &b3, y3, 256);
  // ggml's Q3_K scale unpacking, through four 32-bit words.
  uint32_t aux[4];
  std::memcpy(aux, b3.scales, 12);
  const uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & 0x0f0f0f0f) | (((tmp >> 4) & 0x03030303) << 4);
  aux[3] = ((aux[1] >> 4) & 0x0f0f0f0f) | (((tmp >> 6) & 0x03030303) << 4);
  aux[0] = (aux[0] & 0x0f0f0f0f) | ((tmp & 0x03030303) << 4);
  aux[1] = (aux[1] & 0x0f0f0f0f) | (((tmp >> 2) & 0x03030303) << 4);
  int8_t sc3[16];
  std::memcpy(sc3, aux, 16);
  size_t e = 0, is = 0;
  uint8_t m = 1;
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k, m = uint8_t(m << 1)) {
      for (int half = 0; half < 2; ++half, ++is) {
        const uint8_t sc = b2.scales[is];
        for (int l = 16 * half; l < 16 * half + 16; ++l, ++e) {
          const int q2 = (b2.qs[32 * h + l] >> (2 * k)) & 3;
          EXPECT_EQ(y2[e], 0.75f * float(sc & 0x0f) * q2 - (-0.25f * float(sc >> 4))) << e;
          const int q3 = ((b3.qs[32 * h + l] >> (2 * k)) & 3) - ((b3.hmask[l] & m) ? 0 : 4);
          EXPECT_EQ(y3[e], 0.5f * float(sc3[is] - 32) * q3) << e;
        }
      }
    }
  }
}

// Both x86 variants where the CPU runs them (the AVX2 one on every x86-64 CPU with AVX2).
TEST(QuantK, X86KernelsAreBitIdenticalToScalarOnRandomBlocks) {
  bool ran = false;
  for (QdotIsa isa : {QdotIsa::kAvx2, QdotIsa::kAvx512}) {
    if (!qdot_x86_available(isa) || isa == QdotIsa::kNone || qdot_x86_best() == QdotIsa::kNone)
      continue;
    ran = true;
    expect_k_kernel_bit_identical(
        qdot_isa_name(isa),
        [isa](TensorType t, const uint8_t* w, size_t rb, size_t n, const uint8_t* a, size_t arb,
              size_t na, float* y, size_t ys, size_t r0,
              size_t r1) { kmatmul_x86(isa, t, w, rb, n, a, arb, na, y, ys, r0, r1); });
  }
  if (!ran) GTEST_SKIP() << "no x86 K-quant kernel runs on this CPU";
}

// The AVX2 kernel on Q4_K repacked eight rows at a time, called as two threads would call it
// (slices that start at a group of eight).
TEST(QuantK, RepackedQ4KKernelIsBitIdenticalToScalarOnRandomBlocks) {
  if (!x8_available(TensorType::Q4_K)) GTEST_SKIP() << "no AVX2 on this CPU";
  expect_k_kernel_bit_identical(
      "repacked",
      [](TensorType t, const uint8_t* w, size_t rb, size_t n, const uint8_t* a, size_t arb,
         size_t na, float* y, size_t ys, size_t, size_t rows) {
        std::vector<uint8_t> packed(rows * rb);
        repack_x8(t, w, rows, n, packed.data());
        qmatmul_x8(t, packed.data(), n, a, arb, na, y, ys, 0, 32);
        qmatmul_x8(t, packed.data(), n, a, arb, na, y, ys, 32, rows);
      },
      {TensorType::Q4_K}, 72);
}

// Both Arm variants (under qemu both run; plain NEON alone on an Armv8.0 CPU).
TEST(QuantK, ArmKernelsAreBitIdenticalToScalarOnRandomBlocks) {
  bool ran = false;
  for (ArmQdot isa : {ArmQdot::kNeon, ArmQdot::kDotprod}) {
    if (qdot_arm_best() == ArmQdot::kNone || !qdot_arm_available(isa)) continue;
    ran = true;
    expect_k_kernel_bit_identical(
        arm_qdot_name(isa),
        [isa](TensorType t, const uint8_t* w, size_t rb, size_t n, const uint8_t* a, size_t arb,
              size_t na, float* y, size_t ys, size_t r0,
              size_t r1) { kmatmul_arm(isa, t, w, rb, n, a, arb, na, y, ys, r0, r1); },
        kArmKTypes);
  }
  if (!ran) GTEST_SKIP() << "not an aarch64 build";
}

}  // namespace
}  // namespace dip
