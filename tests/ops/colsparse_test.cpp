#include "ops/colsparse.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ops/matvec.h"
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
  EXPECT_THROW(make_column_matrix(TensorType::F32, {w.data()}, 40, 8, TensorType::Q8_0), std::exception);
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
          ASSERT_NEAR(got[o], ref[o], 2e-5 * mag * 4) << ggml_type_name(uint32_t(t)) << " k=" << idx.size();
          ASSERT_NEAR(got_1[o], ref[o], 2e-5 * mag * 4) << ggml_type_name(uint32_t(t)) << " k=" << idx.size();
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
      colsparse_ptrs(t, rows, ptrs.data() + half, xs.data() + half, idx.size() - half, got.data(), true, &pool);
      colsparse_ptrs_ref(t, rows, ptrs.data(), xs.data(), half, got_ref.data(), 0, rows, false);
      colsparse_ptrs_ref(t, rows, ptrs.data() + half, xs.data() + half, idx.size() - half, got_ref.data(), 0, rows, true);
      double mag = 1e-6;
      for (float v : xs) mag += std::fabs(v);
      for (size_t o = 0; o < rows; ++o) {
        ASSERT_NEAR(got[o], ref[o], 1e-4 * mag) << ggml_type_name(uint32_t(t)) << " k=" << idx.size();
        ASSERT_NEAR(got_ref[o], ref[o], 1e-5 * mag);
      }
    }
  }
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
