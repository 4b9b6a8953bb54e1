// Column-major ("input-major") weights and column-sparse products y = W[:, S] x[S]: a pruned
// input coordinate's column is neither read nor multiplied. Quantized columns keep ggml's
// blocks along the column (the output dimension), so one column is one contiguous run of
// blocks that a single read fetches.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/tensor_types.h"
#include "util/huge_buffer.h"

namespace dip {

class ThreadPool;

struct ColumnMatrix {
  TensorType type = TensorType::F32;
  size_t n_cols = 0;     // inputs
  size_t col_len = 0;    // outputs (elements per column; a multiple of the block size)
  size_t col_bytes = 0;  // bytes per column
  HugeBuffer data;
  const uint8_t* col(size_t c) const { return data.data() + c * col_bytes; }
  size_t bytes() const { return data.size(); }
};

// Builds the column-major copy of row-major ggml weights. `parts` are stacked along the
// output dimension (e.g. {gate, up} makes up+gate bundles: column i = [gate[:, i]; up[:, i]]);
// each part has `rows` outputs of `cols` inputs of type `src_type`. F32/F16/BF16 columns are
// exact transposes; Q8_0/Q4_0 are requantized along the column (ggml's reference quantizers).
ColumnMatrix make_column_matrix(TensorType src_type, const std::vector<const uint8_t*>& parts,
                                size_t rows, size_t cols, TensorType col_type);

// y[o] = sum_k xs[k] * W[o, idx[k]] for o in [o0, o1) (block-aligned), idx ascending or not.
// y is overwritten. Scalar reference and SIMD kernel.
void colsparse_ref(const ColumnMatrix& w, const int32_t* idx, const float* xs, size_t nk, float* y,
                   size_t o0, size_t o1);
void colsparse_simd(const ColumnMatrix& w, const int32_t* idx, const float* xs, size_t nk, float* y,
                    size_t o0, size_t o1);

// The same over columns given by pointer (e.g. slots of a column cache or a read buffer):
// y[o] (+)= sum_k xs[k] * cols[k][o]; with accumulate, y is added to instead of overwritten.
void colsparse_ptrs_ref(TensorType type, size_t col_len, const uint8_t* const* cols,
                        const float* xs, size_t nk, float* y, size_t o0, size_t o1,
                        bool accumulate);
void colsparse_ptrs(TensorType type, size_t col_len, const uint8_t* const* cols, const float* xs,
                    size_t nk, float* y, bool accumulate, ThreadPool* pool);

// The whole output (col_len values), split over the pool's threads by output slices.
void colsparse(const ColumnMatrix& w, const int32_t* idx, const float* xs, size_t nk, float* y,
               ThreadPool* pool);

// colsparse_ptrs over columns that become available a few at a time (flash reads), with the
// very same additions in the very same order: the result is bit for bit colsparse_ptrs's over
// the whole list, whatever the pieces. The sum has a fixed structure (runs of kept columns
// summed from zero into partial buffers, or one run straight into y) and kernel groups of up to
// 16 columns; a piece may end only where that structure allows, which acceptable() says.
class ColSparseSum {
 public:
  // y (+)= sum over nk columns of type/col_len, to be added in order by add().
  ColSparseSum(TensorType type, size_t col_len, size_t nk, float* y, bool accumulate,
               ThreadPool* pool);
  // How many of the next `available` columns add() may take now (0: wait for more).
  size_t acceptable(size_t available) const;
  // Adds the next m columns (m == acceptable(m) or the rest of the list).
  void add(const uint8_t* const* cols, const float* xs, size_t m);
  // Writes y; every column must have been added.
  void finish();
  size_t added() const { return k_; }

  static constexpr size_t kGroup = 16;  // the widest kernel group (Q4_0 int8: 16 columns)

 private:
  size_t run_begin(size_t r) const { return r * nk_ / n_runs_; }
  TensorType type_;
  size_t col_len_, nk_, k_ = 0, n_runs_ = 1;
  float* y_;
  bool accumulate_, partials_ = false;
  ThreadPool* pool_;
  float* part_ = nullptr;  // n_runs_ partial sums of col_len_ (partials_ only)
};

}  // namespace dip
