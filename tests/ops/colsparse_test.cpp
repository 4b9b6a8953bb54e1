#include "ops/colsparse.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <utility>

#include "ops/colsparse_q4_int8.h"
#include "ops/matvec.h"
#include "ops/qdot_arm.h"
#include "ops/quant.h"
#include "test_random.h"
#include "util/threadpool.h"

namespace dip {
namespace {

// A random row-major weight of `rows` x `cols` stored as type t.
std::vector<uint8_t> random_rows(TensorType t, size_t rows, size_t cols) {
  const auto w = randn(rows * cols);
  std::vector<uint8_t> q(rows * row_bytes(t, cols));
  for (size_t r = 0; r < rows; ++r) quantize_row(t, &w[r * cols], &q[r * row_bytes(t, cols)], cols);
  return q;
}

TEST(ColumnLayout, FloatTypesAreExactTransposesAndBundlesStack) {
  const size_t rows = 96, cols = 40;
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16}) {
    const auto gate = random_rows(t, rows, cols), up = random_rows(t, rows, cols);
    const ColumnMatrix m = make_column_matrix(t, {gate.data(), up.data()}, rows, cols, t);
    ASSERT_EQ(m.n_cols, cols);
    ASSERT_EQ(m.col_len, 2 * rows);
    std::vector<float> grow(cols), urow(cols), col(2 * rows);
    for (size_t c = 0; c < cols; ++c) {
      dequantize_row(t, m.col(c), col.data(), 2 * rows);
      for (size_t r = 0; r < rows; ++r) {
        dequantize_row(t, &gate[r * row_bytes(t, cols)], grow.data(), cols);
        dequantize_row(t, &up[r * row_bytes(t, cols)], urow.data(), cols);
        ASSERT_EQ(col[r], grow[c]);
        ASSERT_EQ(col[rows + r], urow[c]);
      }
    }
  }
}

TEST(ColumnLayout, RowsNotMultipleOfBlockAreAnError) {
  const auto w = random_rows(TensorType::F32, 40, 8);
  EXPECT_THROW(make_column_matrix(TensorType::F32, {w.data()}, 40, 8, TensorType::Q8_0),
               std::exception);
}

// Q4_0's int8 kernel (AVX-512 VNNI, Arm sdot / NEON) rounds each block's sixteen coefficients x * d
// to int8 with a shared scale (exact model: Q4Int8KernelMatchesItsScalarModelBitForBit); its error
// against the double-precision reference is then ~1e-3 of sum |x|, not float rounding.
double tolerance_per_mag(TensorType t, double float_tol) {
  return t == TensorType::Q4_0 && colsparse_q4_int8_kernel() ? 1e-2 : float_tol;
}

// Index sets: empty, single, full, random sorted, random unsorted, duplicates-free.
std::vector<std::vector<int32_t>> index_sets(size_t n) {
  std::vector<std::vector<int32_t>> sets;
  sets.push_back({});
  sets.push_back({int32_t(rng()() % n)});
  std::vector<int32_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  sets.push_back(all);
  for (double keep : {0.1, 0.5, 0.9}) {
    std::vector<int32_t> s = all;
    std::shuffle(s.begin(), s.end(), rng());
    s.resize(std::max<size_t>(1, size_t(keep * n)));
    sets.push_back(s);  // unsorted
    std::sort(s.begin(), s.end());
    sets.push_back(s);  // sorted
  }
  return sets;
}

TEST(ColumnSparse, SimdMatchesScalarReferenceForEveryTypeAndIndexSet) {
  ThreadPool pool(3);
  for (TensorType t : kAllTypes) {
    for (size_t rows : {32u, 160u, 2304u}) {  // 2304 > one 2048-output slice
      const size_t cols = 67;
      const auto src = random_rows(TensorType::F32, rows, cols);
      const ColumnMatrix m = make_column_matrix(TensorType::F32, {src.data()}, rows, cols, t);
      for (const auto& idx : index_sets(cols)) {
        const auto xs = randn(idx.size());
        std::vector<float> ref(rows, NAN), got(rows, NAN), got_1(rows, NAN), got_mt(rows, NAN);
        colsparse_ref(m, idx.data(), xs.data(), idx.size(), ref.data(), 0, rows);
        colsparse_simd(m, idx.data(), xs.data(), idx.size(), got.data(), 0, rows);
        colsparse(m, idx.data(), xs.data(), idx.size(), got_1.data(), nullptr);  // one thread
        colsparse(m, idx.data(), xs.data(), idx.size(), got_mt.data(), &pool);
        double mag = 1e-6;
        for (float v : xs) mag += std::fabs(v);
        for (size_t o = 0; o < rows; ++o) {
          const double tol = tolerance_per_mag(t, 8e-5) * mag;
          ASSERT_NEAR(got[o], ref[o], tol) << ggml_type_name(uint32_t(t)) << " k=" << idx.size();
          ASSERT_NEAR(got_1[o], ref[o], tol) << ggml_type_name(uint32_t(t)) << " k=" << idx.size();
          ASSERT_EQ(got_mt[o], got_1[o]) << "threads change the result";
        }
      }
    }
  }
}

// Columns given by pointer (cache slots, read buffers), split into two passes the way the flash
// path splits hits and misses: the second pass accumulates onto the first.
TEST(ColumnSparse, PointerColumnsAccumulateLikeOnePass) {
  ThreadPool pool(2);
  for (TensorType t : kAllTypes) {
    const size_t rows = 576, cols = 50;
    const auto src = random_rows(TensorType::F32, rows, cols);
    const ColumnMatrix m = make_column_matrix(TensorType::F32, {src.data()}, rows, cols, t);
    for (const auto& idx : index_sets(cols)) {
      // Copies of the kept columns in scattered buffers, as slots would hold them.
      std::vector<std::vector<uint8_t>> copies;
      std::vector<const uint8_t*> ptrs;
      for (int32_t c : idx) copies.emplace_back(m.col(size_t(c)), m.col(size_t(c)) + m.col_bytes);
      for (const auto& c : copies) ptrs.push_back(c.data());
      const auto xs = randn(idx.size());
      const size_t half = idx.size() / 2;
      std::vector<float> ref(rows), got(rows, NAN), got_ref(rows, NAN);
      colsparse_ref(m, idx.data(), xs.data(), idx.size(), ref.data(), 0, rows);
      colsparse_ptrs(t, rows, ptrs.data(), xs.data(), half, got.data(), false, &pool);
      colsparse_ptrs(t, rows, ptrs.data() + half, xs.data() + half, idx.size() - half, got.data(),
                     true, &pool);
      colsparse_ptrs_ref(t, rows, ptrs.data(), xs.data(), half, got_ref.data(), 0, rows, false);
      colsparse_ptrs_ref(t, rows, ptrs.data() + half, xs.data() + half, idx.size() - half,
                         got_ref.data(), 0, rows, true);
      double mag = 1e-6;
      for (float v : xs) mag += std::fabs(v);
      for (size_t o = 0; o < rows; ++o) {
        ASSERT_NEAR(got[o], ref[o], tolerance_per_mag(t, 1e-4) * mag)
            << ggml_type_name(uint32_t(t)) << " k=" << idx.size();
        ASSERT_NEAR(got_ref[o], ref[o], 1e-5 * mag);
      }
    }
  }
}

// The int8 Q4_0 kernel against its scalar model: the same roundings, so the same bits; and the
// model itself within its stated error of the exact product. Scales of very different sizes
// per column (a column whose coefficient rounds to zero), a zero x, odd block ranges.
TEST(ColumnSparse, Q4Int8KernelMatchesItsScalarModelBitForBit) {
  const size_t rows = 32 * 37, ncols = 16;
  const auto src = random_rows(TensorType::F32, rows, ncols);
  ColumnMatrix m = make_column_matrix(TensorType::F32, {src.data()}, rows, ncols, TensorType::Q4_0);
  // Column 5 a thousand times smaller: its k rounds to 0 in most blocks.
  {
    std::vector<float> col(rows);
    dequantize_row(TensorType::Q4_0, m.col(5), col.data(), rows);
    for (float& v : col) v *= 1e-3f;
    quantize_row(TensorType::Q4_0, col.data(), m.data.data() + 5 * m.col_bytes, rows);
  }
  std::vector<const uint8_t*> cols;
  for (size_t c = 0; c < ncols; ++c) cols.push_back(m.col(c));
  for (int trial = 0; trial < 3; ++trial) {
    auto x = randn(ncols);
    if (trial == 1) x[3] = 0.0f;
    if (trial == 2) std::fill(x.begin(), x.end(), 0.0f);  // every block skipped
    const auto y0 = randn(rows);
    std::vector<float> model = y0, exact(rows);
    colsparse_q4_int8_ref16(cols.data(), x.data(), model.data(), 1, 36);
    colsparse_ptrs_ref(TensorType::Q4_0, rows, cols.data(), x.data(), ncols, exact.data(), 0, rows,
                       false);
    double amax_bound = 0;
    for (size_t c = 0; c < ncols; ++c) amax_bound = std::max(amax_bound, std::fabs(double(x[c])));
    for (size_t o = 0; o < rows; ++o) {
      if (o < 32 || o >= 36 * 32) {
        ASSERT_EQ(model[o], y0[o]) << "outside [b0, b1) untouched";
        continue;
      }
      // Each term is off by at most half an int8 step of the block's largest coefficient times
      // |q - 8| <= 8; the scales d are at most max|w| / 8 (randn: well under 1).
      ASSERT_NEAR(model[o] - y0[o], exact[o], 16 * 0.5 / 127 * 8 * amax_bound + 1e-4) << o;
    }
    // Every int8 kernel this CPU runs: x86's, and on Arm both variants where available.
    std::vector<std::pair<std::string, std::function<void(float*)>>> kernels;
    if (colsparse_q4_vnni_available())
      kernels.emplace_back("avx512-vnni",
                           [&](float* y) { colsparse_q4_vnni16(cols.data(), x.data(), y, 1, 36); });
    if (colsparse_q4_avx2_available())
      kernels.emplace_back(
          "avx2", [&](float* y) { colsparse_q4_avx2_16(cols.data(), x.data(), y, 1, 36); });
    for (ArmQdot isa : {ArmQdot::kNeon, ArmQdot::kDotprod}) {
      if (qdot_arm_best() == ArmQdot::kNone || !qdot_arm_available(isa)) continue;
      kernels.emplace_back(arm_qdot_name(isa), [&, isa](float* y) {
        colsparse_q4_arm16(isa, cols.data(), x.data(), y, 1, 36);
      });
    }
    for (const auto& [name, run] : kernels) {
      std::vector<float> got = y0;
      run(got.data());
      for (size_t o = 0; o < rows; ++o)
        ASSERT_EQ(got[o], model[o]) << name << " trial " << trial << " output " << o;
    }
  }
  if (!colsparse_q4_int8_kernel())
    GTEST_SKIP() << "this CPU runs no int8 column kernel: only the model was checked";
}

// With every column kept, the column-sparse product is the dense product of the same weights.
TEST(ColumnSparse, FullSetEqualsDenseProduct) {
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16}) {
    const size_t rows = 64, cols = 96;
    const auto w = random_rows(t, rows, cols);
    const ColumnMatrix m = make_column_matrix(t, {w.data()}, rows, cols, t);
    const auto x = randn(cols);
    std::vector<int32_t> all(cols);
    std::iota(all.begin(), all.end(), 0);
    std::vector<float> y(rows);
    colsparse(m, all.data(), x.data(), cols, y.data(), nullptr);
    std::vector<float> row(cols);
    for (size_t r = 0; r < rows; ++r) {
      dequantize_row(t, &w[r * row_bytes(t, cols)], row.data(), cols);
      double ref = 0;
      for (size_t c = 0; c < cols; ++c) ref += double(row[c]) * x[c];
      EXPECT_NEAR(y[r], ref, 1e-4 * (1 + std::fabs(ref)));
    }
  }
}

}  // namespace
}  // namespace dip
