// Column-sparse kernels (Highway, dynamic dispatch). Output is processed in slices that stay
// in L1/L2 while the kept columns stream past, four columns per pass over the slice so the
// accumulator is loaded and stored once per four columns.
#include "ops/colsparse.h"

#include <algorithm>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/colsparse.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "ops/colsparse_q4_int8.h"
#include "ops/quant.h"
#include "util/fp.h"

HWY_BEFORE_NAMESPACE();
namespace dip {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr size_t kSlice = 8192;  // outputs per slice (a multiple of 32); y slice stays in L2
// Software prefetch distance inside a column: the kept columns are short streams that the
// hardware prefetcher has no time to learn.
constexpr size_t kPrefetchBytes = 768;

// y[o0, o1) += sum over NC columns of s[c] * column c, for float-like element types.
template <int NC, class Load>
HWY_INLINE void AccumulateFloatCols(const float* s, Load load, float* y, size_t o0, size_t o1) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  size_t o = o0;
  for (; o + L <= o1; o += L) {
    if (o % Load::kPerLine == 0) {  // once per 64-byte line of each column
      for (int c = 0; c < NC; ++c) load.prefetch(c, o, kPrefetchBytes);
    }
    auto acc = hn::LoadU(d, y + o);
    for (int c = 0; c < NC; ++c) acc = hn::MulAdd(hn::Set(d, s[c]), load(d, c, o), acc);
    hn::StoreU(acc, d, y + o);
  }
  for (; o < o1; ++o) {
    for (int c = 0; c < NC; ++c) y[o] += s[c] * load.scalar(c, o);
  }
}

struct LoadF32 {
  static constexpr size_t kPerLine = 16;
  const float* col[4];
  template <class D>
  HWY_INLINE hn::Vec<D> operator()(D d, int c, size_t o) const {
    return hn::LoadU(d, col[c] + o);
  }
  float scalar(int c, size_t o) const { return col[c][o]; }
  void prefetch(int c, size_t o, size_t ahead) const {
    __builtin_prefetch(reinterpret_cast<const uint8_t*>(col[c] + o) + ahead);
  }
};

template <bool kBF16>
struct LoadHalf {
  static constexpr size_t kPerLine = 32;
  const uint16_t* col[4];
  template <class D>
  HWY_INLINE hn::Vec<D> operator()(D d, int c, size_t o) const {
    if constexpr (kBF16) {
      const hn::Rebind<uint16_t, D> d16;
      const hn::Rebind<uint32_t, D> d32;
      return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(d32, hn::LoadU(d16, col[c] + o))));
    } else {
      const hn::Rebind<hwy::float16_t, D> dh;
      return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(col[c] + o)));
    }
  }
  float scalar(int c, size_t o) const {
    return kBF16 ? bf16_to_f32(col[c][o]) : fp16_to_f32(col[c][o]);
  }
  void prefetch(int c, size_t o, size_t ahead) const {
    __builtin_prefetch(reinterpret_cast<const uint8_t*>(col[c] + o) + ahead);
  }
};

// s[c] = x[c] * (fp16 scale of column c's block), four at a time with one vector conversion.
template <int NC>
HWY_INLINE void BlockScales(const float* x, const uint16_t* dh, float* s) {
  if constexpr (NC == 4) {
    const hn::CappedTag<float, 4> d4;
    const hn::Rebind<hwy::float16_t, decltype(d4)> dh4;
    hn::StoreU(
        hn::Mul(hn::PromoteTo(d4, hn::LoadU(dh4, reinterpret_cast<const hwy::float16_t*>(dh))),
                hn::LoadU(d4, x)),
        d4, s);
  } else {
    for (int c = 0; c < NC; ++c) s[c] = x[c] * fp16_to_f32(dh[c]);
  }
}

// Quantized columns: per block, each column's scale times its x, then the 32 quants.
template <int NC, bool kQ4>
HWY_INLINE void AccumulateQuantCols(const float* x, const uint8_t* const* col, float* y, size_t b0,
                                    size_t b1) {
  const hn::ScalableTag<float> d;
  const hn::RebindToSigned<decltype(d)> di;
  const hn::Rebind<int8_t, decltype(d)> d8;
  const hn::Rebind<uint8_t, decltype(d)> du8;
  const size_t L = hn::Lanes(d);
  for (size_t b = b0; b < b1; ++b) {
    float* yb = y + b * 32;
    HWY_ALIGN float s[4] = {0, 0, 0, 0};
    uint16_t dh[4] = {0, 0, 0, 0};
    if constexpr (kQ4) {
      const BlockQ4_0* blk[NC];
      for (int c = 0; c < NC; ++c) {
        blk[c] = reinterpret_cast<const BlockQ4_0*>(col[c]) + b;
        dh[c] = blk[c]->d;
        __builtin_prefetch(reinterpret_cast<const uint8_t*>(blk[c]) + kPrefetchBytes);
      }
      BlockScales<NC>(x, dh, s);
#if HWY_TARGET <= HWY_AVX3
      // 16 float lanes: a nibble indexes a 16-entry table of q - 8 with one vpermps (which
      // reads only an index's low 4 bits), instead of mask, subtract and convert: the same
      // values in fewer vector operations, which bound this kernel (in cache, one core, on the
      // AVX-512 Xeon: 4.9-5.5 to 7.2-7.4 GB/s of kept columns, kernels_bench
      // --benchmark_filter=ColsHot).
      if constexpr (hn::MaxLanes(d) == 16) {
        const __m512 table = hn::Iota(d, -8.0f).raw;
        auto lo = hn::LoadU(d, yb), hi = hn::LoadU(d, yb + 16);
        for (int c = 0; c < NC; ++c) {
          const __m512i q =
              _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[c]->qs)));
          const auto sv = hn::Set(d, s[c]);
          lo = hn::MulAdd(sv, decltype(lo){_mm512_permutexvar_ps(q, table)}, lo);
          hi = hn::MulAdd(sv, decltype(lo){_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table)},
                          hi);
        }
        hn::StoreU(lo, d, yb);
        hn::StoreU(hi, d, yb + 16);
        continue;
      }
#endif
      const auto eight = hn::Set(di, 8), low = hn::Set(di, 0x0f);
      for (size_t j = 0; j < 16; j += L) {
        auto lo = hn::LoadU(d, yb + j), hi = hn::LoadU(d, yb + 16 + j);
        for (int c = 0; c < NC; ++c) {
          const auto q = hn::BitCast(di, hn::PromoteTo(hn::RebindToUnsigned<decltype(di)>(),
                                                       hn::LoadU(du8, blk[c]->qs + j)));
          const auto sv = hn::Set(d, s[c]);
          lo = hn::MulAdd(sv, hn::ConvertTo(d, hn::Sub(hn::And(q, low), eight)), lo);
          hi = hn::MulAdd(sv, hn::ConvertTo(d, hn::Sub(hn::ShiftRight<4>(q), eight)), hi);
        }
        hn::StoreU(lo, d, yb + j);
        hn::StoreU(hi, d, yb + 16 + j);
      }
    } else {
      const BlockQ8_0* blk[NC];
      for (int c = 0; c < NC; ++c) {
        blk[c] = reinterpret_cast<const BlockQ8_0*>(col[c]) + b;
        dh[c] = blk[c]->d;
        __builtin_prefetch(reinterpret_cast<const uint8_t*>(blk[c]) + kPrefetchBytes);
      }
      BlockScales<NC>(x, dh, s);
      for (size_t j = 0; j < 32; j += L) {
        auto acc = hn::LoadU(d, yb + j);
        for (int c = 0; c < NC; ++c) {
          acc = hn::MulAdd(hn::Set(d, s[c]),
                           hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, blk[c]->qs + j))), acc);
        }
        hn::StoreU(acc, d, yb + j);
      }
    }
  }
}

template <int NC>
HWY_INLINE void AccumulateCols(TensorType type, const uint8_t* const* col, const float* x, float* y,
                               size_t o0, size_t o1) {
  switch (type) {
    case TensorType::F32: {
      LoadF32 l;
      for (int c = 0; c < NC; ++c) l.col[c] = reinterpret_cast<const float*>(col[c]);
      AccumulateFloatCols<NC>(x, l, y, o0, o1);
      break;
    }
    case TensorType::F16:
    case TensorType::BF16: {
      if (type == TensorType::BF16) {
        LoadHalf<true> l;
        for (int c = 0; c < NC; ++c) l.col[c] = reinterpret_cast<const uint16_t*>(col[c]);
        AccumulateFloatCols<NC>(x, l, y, o0, o1);
      } else {
        LoadHalf<false> l;
        for (int c = 0; c < NC; ++c) l.col[c] = reinterpret_cast<const uint16_t*>(col[c]);
        AccumulateFloatCols<NC>(x, l, y, o0, o1);
      }
      break;
    }
    case TensorType::Q8_0:
      AccumulateQuantCols<NC, false>(x, col, y, o0 / 32, o1 / 32);
      break;
    case TensorType::Q4_0:
      AccumulateQuantCols<NC, true>(x, col, y, o0 / 32, o1 / 32);
      break;
    default:  // no column layout has K-quant blocks (make_column_matrix refuses them)
      break;
  }
}

void ColSparse(TensorType type, const uint8_t* const* cols, const float* xs, size_t nk, float* y,
               size_t o0, size_t o1, bool accumulate) {
  const size_t esize = type == TensorType::F32 ? 4 : 2;  // bytes per element of float-like types
  for (size_t s0 = o0; s0 < o1; s0 += kSlice) {
    const size_t s1 = std::min(o1, s0 + kSlice);
    if (!accumulate) std::memset(y + s0, 0, (s1 - s0) * sizeof(float));
    // Byte range of this slice inside a column (for prefetching the next columns).
    const size_t pre = block_elems(type) > 1 ? s0 / 32 * block_bytes(type) : s0 * esize;
    // The first lines of the next group's columns (their streams start cold).
    const auto prefetch_group = [&](size_t c0, size_t c1) {
      for (size_t c = c0; c < std::min(nk, c1); ++c) {
        const uint8_t* p = cols[c] + pre;
        for (size_t l = 0; l < kPrefetchBytes; l += 64) __builtin_prefetch(p + l);
      }
    };
    size_t k = 0;
    const ColsparseQ4Int8Fn int8_kernel =
        type == TensorType::Q4_0 && nk >= 16 ? colsparse_q4_int8_kernel() : nullptr;
    if (int8_kernel) {
      for (; k + 16 <= nk; k += 16) {
        prefetch_group(k + 16, k + 32);
        int8_kernel(cols + k, xs + k, y, s0 / 32, s1 / 32);
      }
    }
    for (; k + 4 <= nk; k += 4) {
      prefetch_group(k + 4, k + 8);
      AccumulateCols<4>(type, cols + k, xs + k, y, s0, s1);
    }
    for (; k < nk; ++k) AccumulateCols<1>(type, cols + k, xs + k, y, s0, s1);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace dip
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cmath>

#include "ops/elementwise_simd.h"
#include "ops/qdot_arm.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {
HWY_EXPORT(ColSparse);

namespace {
void colsparse_q4_arm_best16(const uint8_t* const* col, const float* x, float* y, size_t b0,
                             size_t b1) {
  colsparse_q4_arm16(qdot_arm_best(), col, x, y, b0, b1);
}
}  // namespace

ColsparseQ4Int8Fn colsparse_q4_int8_kernel() {
  if (colsparse_q4_vnni_available()) return colsparse_q4_vnni16;
  if (colsparse_q4_avx2_available()) return colsparse_q4_avx2_16;
  if (qdot_arm_best() != ArmQdot::kNone) return colsparse_q4_arm_best16;
  return nullptr;
}

ColumnMatrix make_column_matrix(TensorType src_type, const std::vector<const uint8_t*>& parts,
                                size_t rows, size_t cols, TensorType col_type) {
  if (is_k_quant(col_type) || col_type == TensorType::Q8_K)
    fail("column layout: {} blocks run along the inputs and cannot form columns",
         ggml_type_name(uint32_t(col_type)));
  ColumnMatrix m;
  m.type = col_type;
  m.n_cols = cols;
  m.col_len = rows * parts.size();
  if (m.col_len % block_elems(col_type) != 0) {
    fail("column layout: {} outputs are not a multiple of the {} block size", m.col_len,
         ggml_type_name(uint32_t(col_type)));
  }
  m.col_bytes = row_bytes(col_type, m.col_len);
  m.data = HugeBuffer(m.col_bytes * cols);
  const size_t src_rb = row_bytes(src_type, cols);
  const size_t es = block_elems(col_type) == 1 ? block_bytes(col_type) : 0;
  constexpr size_t kTile = 64;
  if (src_type == col_type && es > 0) {
    // Same float-like type: a blocked transpose of the elements (exact, no conversion).
    for (size_t p = 0; p < parts.size(); ++p) {
      for (size_t r0 = 0; r0 < rows; r0 += kTile) {
        for (size_t c = 0; c < cols; ++c) {
          uint8_t* dst = m.data.data() + c * m.col_bytes + (p * rows) * es;
          for (size_t r = r0; r < std::min(rows, r0 + kTile); ++r) {
            std::memcpy(dst + r * es, parts[p] + r * src_rb + c * es, es);
          }
        }
      }
    }
    return m;
  }
  // Otherwise through floats, one band of `band_cols` columns at a time: each row's band of
  // inputs is decoded (whole blocks: 64 inputs, or a K-quant super-block of 256) and scattered
  // into the band's columns, kTile rows per tile so every column is written in runs, then each
  // column is quantized along its length. No decoded copy of the whole matrix (gigabytes for
  // large models: its page faults cost more than the conversion).
  static_assert(kTile % 32 == 0);
  const size_t band_cols = std::max(kTile, block_elems(src_type));
  std::vector<float> band(band_cols * m.col_len), tmp(kTile * band_cols);
  for (size_t c0 = 0; c0 < cols; c0 += band_cols) {
    const size_t nc = std::min(band_cols, cols - c0);
    if (nc % block_elems(src_type) != 0)
      fail("column layout: {} inputs are not whole {} blocks", cols,
           ggml_type_name(uint32_t(src_type)));
    const size_t src_off = row_bytes(src_type, c0);
    for (size_t r0 = 0; r0 < m.col_len; r0 += kTile) {
      const size_t r1 = std::min(m.col_len, r0 + kTile);
      for (size_t r = r0; r < r1; ++r) {
        const uint8_t* src = parts[r / rows] + (r % rows) * src_rb + src_off;
        float* dst = &tmp[(r - r0) * band_cols];
        if (src_type == TensorType::F16 || src_type == TensorType::BF16) {
          decode_half_row(src_type == TensorType::BF16, reinterpret_cast<const uint16_t*>(src), dst,
                          nc);
        } else {
          dequantize_row(src_type, src, dst, nc);
        }
      }
      for (size_t c = 0; c < nc; ++c) {
        float* col = &band[c * m.col_len];
        for (size_t r = r0; r < r1; ++r) col[r] = tmp[(r - r0) * band_cols + c];
      }
    }
    for (size_t c = 0; c < nc; ++c)
      quantize_row(col_type, &band[c * m.col_len], m.data.data() + (c0 + c) * m.col_bytes,
                   m.col_len);
  }
  return m;
}

namespace {
// Columns of at most this many bytes are split by kept column, not by output (colsparse_ptrs).
constexpr size_t kShortColumnBytes = 8192;
constexpr size_t kColumnPartials = 4;  // fixed: the result must not depend on the thread count
// Column pointers of idx in w (scratch reused per thread).
const uint8_t* const* column_pointers(const ColumnMatrix& w, const int32_t* idx, size_t nk) {
  thread_local std::vector<const uint8_t*> ptrs;
  ptrs.resize(nk);
  for (size_t k = 0; k < nk; ++k) ptrs[k] = w.col(size_t(idx[k]));
  return ptrs.data();
}
}  // namespace

void colsparse_ptrs_ref(TensorType type, size_t col_len, const uint8_t* const* cols,
                        const float* xs, size_t nk, float* y, size_t o0, size_t o1,
                        bool accumulate) {
  std::vector<double> acc(o1 - o0, 0.0);
  std::vector<float> col(col_len);
  for (size_t k = 0; k < nk; ++k) {
    dequantize_row(type, cols[k], col.data(), col_len);
    for (size_t o = o0; o < o1; ++o) acc[o - o0] += double(xs[k]) * col[o];
  }
  for (size_t o = o0; o < o1; ++o) y[o] = float(acc[o - o0] + (accumulate ? double(y[o]) : 0.0));
}

void colsparse_q4_int8_ref16(const uint8_t* const* col, const float* x, float* y, size_t b0,
                             size_t b1) {
  for (size_t b = b0; b < b1; ++b) {
    float coef[16], amax = 0.0f;
    for (int c = 0; c < 16; ++c) {
      coef[c] = x[c] * fp16_to_f32(reinterpret_cast<const BlockQ4_0*>(col[c])[b].d);
      amax = std::max(amax, std::fabs(coef[c]));
    }
    if (!(amax > 0.0f)) continue;
    const float inv = 127.0f / amax;
    int32_t acc[32] = {};
    for (int c = 0; c < 16; ++c) {
      const int32_t k = int32_t(std::nearbyint(coef[c] * inv));
      const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(col[c])[b];
      for (int i = 0; i < 16; ++i) {
        acc[i] += k * (int32_t(blk.qs[i] & 0x0f) - 8);
        acc[i + 16] += k * (int32_t(blk.qs[i] >> 4) - 8);
      }
    }
    for (int i = 0; i < 32; ++i)
      y[b * 32 + i] = std::fma(amax / 127.0f, float(acc[i]), y[b * 32 + i]);
  }
}

void colsparse_ref(const ColumnMatrix& w, const int32_t* idx, const float* xs, size_t nk, float* y,
                   size_t o0, size_t o1) {
  colsparse_ptrs_ref(w.type, w.col_len, column_pointers(w, idx, nk), xs, nk, y, o0, o1, false);
}

void colsparse_simd(const ColumnMatrix& w, const int32_t* idx, const float* xs, size_t nk, float* y,
                    size_t o0, size_t o1) {
  HWY_DYNAMIC_DISPATCH(ColSparse)(w.type, column_pointers(w, idx, nk), xs, nk, y, o0, o1, false);
}

ColSparseSum::ColSparseSum(TensorType type, size_t col_len, size_t nk, float* y, bool accumulate,
                           ThreadPool* pool)
    : type_(type), col_len_(col_len), nk_(nk), y_(y), accumulate_(accumulate), pool_(pool) {
  // Short columns (a down projection's): split by output, every thread would read a sliver of
  // every column (2 KiB of a 4 KiB column with two threads), too short a stream for the
  // prefetchers. Instead the kept columns go in kColumnPartials fixed runs, each summed from
  // zero into its own buffer (by whichever thread takes it), then added in a fixed order: whole
  // columns per stream, and the same result for every thread count. (With fewer kept columns
  // than two 4-column groups per run, the output split is kept.)
  partials_ = row_bytes(type, col_len) <= kShortColumnBytes && nk >= 2 * kColumnPartials * 4;
  if (partials_) {
    n_runs_ = kColumnPartials;
    thread_local std::vector<float> part_buf;  // the caller's; workers get a pointer
    part_buf.resize(kColumnPartials * col_len);
    part_ = part_buf.data();
  }
}

size_t ColSparseSum::acceptable(size_t available) const {
  const size_t limit = std::min(nk_, k_ + available);
  if (limit == nk_) return limit - k_;
  size_t r = 0;  // the run that holds position `limit`
  while (r + 1 < n_runs_ && run_begin(r + 1) <= limit) ++r;
  const size_t b = run_begin(r);
  const size_t end = std::max(k_, b + (limit - b) / kGroup * kGroup);
  return end - k_;
}

void ColSparseSum::add(const uint8_t* const* cols, const float* xs, size_t m) {
  auto* fn = HWY_DYNAMIC_DISPATCH(ColSparse);
  const size_t k0 = k_;
  k_ += m;
  if (m == 0) return;
  if (partials_) {
    // The pieces of [k0, k0 + m) inside each run, summed into the run's buffer.
    auto runs = [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        const size_t b = std::max(k0, run_begin(r)), e = std::min(k_, run_begin(r + 1));
        if (b >= e) continue;
        fn(type_, cols + (b - k0), xs + (b - k0), e - b, part_ + r * col_len_, 0, col_len_,
           b != run_begin(r));
      }
    };
    size_t r_first = 0, r_last = 0;
    while (run_begin(r_first + 1) <= k0) ++r_first;
    while (r_last + 1 < n_runs_ && run_begin(r_last + 1) < k_) ++r_last;
    if (pool_ && r_last > r_first) {
      pool_->parallel_for(r_last - r_first + 1, 1,
                          [&](size_t a, size_t e) { runs(r_first + a, r_first + e); });
    } else {
      runs(r_first, r_last + 1);
    }
    return;
  }
  const bool acc = accumulate_ || k0 > 0;
  const size_t grain = 256;  // outputs; a multiple of every block size
  if (pool_ && pool_->size() > 1 && col_len_ >= 2 * grain) {
    // Equal contiguous output slices per thread: every thread reads its part of every kept
    // column, so the columns' bytes are split evenly and the result does not depend on the
    // thread count. (Splitting the kept columns instead, with per-thread partial sums, measured
    // slower on 14336-long columns and no faster inside the model.)
    pool_->run([&](int t, int nt) {
      const size_t per =
          ((col_len_ + grain - 1) / grain + nt - 1) / nt * grain;  // covers a partial last grain
      const size_t o0 = std::min(col_len_, size_t(t) * per), o1 = std::min(col_len_, o0 + per);
      if (o0 < o1) fn(type_, cols, xs, m, y_, o0, o1, acc);
    });
  } else {
    fn(type_, cols, xs, m, y_, 0, col_len_, acc);
  }
}

void ColSparseSum::finish() {
  if (k_ != nk_) fail("internal: column sum finished after {} of {} columns", k_, nk_);
  if (nk_ == 0 && !accumulate_) std::memset(y_, 0, col_len_ * sizeof(float));
  if (!partials_) return;
  for (size_t o = 0; o < col_len_; ++o) {
    float v = part_[o];
    for (size_t p = 1; p < kColumnPartials; ++p) v += part_[p * col_len_ + o];
    y_[o] = accumulate_ ? y_[o] + v : v;
  }
}

void colsparse_ptrs(TensorType type, size_t col_len, const uint8_t* const* cols, const float* xs,
                    size_t nk, float* y, bool accumulate, ThreadPool* pool) {
  ColSparseSum sum(type, col_len, nk, y, accumulate, pool);
  sum.add(cols, xs, nk);
  sum.finish();
}

void colsparse(const ColumnMatrix& w, const int32_t* idx, const float* xs, size_t nk, float* y,
               ThreadPool* pool) {
  colsparse_ptrs(w.type, w.col_len, column_pointers(w, idx, nk), xs, nk, y, false, pool);
}

}  // namespace dip
#endif
