#include "flash/flash_columns.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "flash/dram_budget.h"
#include "ops/colsparse.h"
#include "util/error.h"

namespace dip {

FlashColumns::FlashColumns(const FlashImage& image, const FlashStoreOptions& opts, double cache_fraction,
                           uint64_t staging)
    : image_(image) {
  const FlashHeader& h = image.header();
  if (!(cache_fraction >= 0 && cache_fraction <= 1)) fail("cache fraction {} is not in [0, 1]", cache_fraction);
  FlashStoreOptions o = opts;
  o.align = h.align;
  store_ = std::make_unique<FlashStore>(image.path(), o);
  up_cap_ = size_t(std::floor(cache_fraction * double(h.n_embd)));
  down_cap_ = size_t(std::floor(cache_fraction * double(h.n_ff)));
  // Untouched slab pages cost nothing until a column is read into them.
  if (up_cap_) up_slab_ = HugeBuffer(h.n_layer * up_cap_ * h.up_col_stride);
  if (down_cap_) down_slab_ = HugeBuffer(h.n_layer * down_cap_ * h.down_col_stride);
  const uint64_t min_staging = 2 * std::max(h.up_col_stride, h.down_col_stride);
  staging_ = HugeBuffer(std::max(min_staging, staging ? staging / (2 * h.align) * (2 * h.align) : dip::staging_bytes(image)));
}

uint64_t FlashColumns::slab_bytes() const {
  const FlashHeader& h = image_.header();
  return uint64_t(h.n_layer) * (up_cap_ * h.up_col_stride + down_cap_ * h.down_col_stride);
}

void FlashColumns::reset_stats() {
  stats_ = {};
  store_->reset_stats();
}

uint8_t* FlashColumns::layer_slots(uint32_t layer, bool up) {
  const FlashHeader& h = image_.header();
  return up ? up_slab_.data() + layer * up_cap_ * h.up_col_stride : down_slab_.data() + layer * down_cap_ * h.down_col_stride;
}

void FlashColumns::prefetch(uint32_t layer, const int32_t* cols, const int32_t* slots, size_t n) {
  if (prefetch_layer_ >= 0) finish_prefetch(uint32_t(prefetch_layer_));  // one in flight at a time
  if (n == 0) return;
  const uint64_t stride = image_.header().up_col_stride;
  uint8_t* slab = layer_slots(layer, true);
  reads_.clear();
  for (size_t i = 0; i < n; ++i) reads_.push_back({image_.up_offset(layer, size_t(cols[i])), uint32_t(stride), slab + size_t(slots[i]) * stride});
  prefetch_ticket_ = store_->submit(reads_);
  prefetch_layer_ = layer;
  stats_.prefetch_columns += n;
  stats_.prefetch_bytes += n * stride;
}

void FlashColumns::finish_prefetch(uint32_t layer) {
  if (prefetch_layer_ != int64_t(layer)) return;
  store_->wait(prefetch_ticket_);
  prefetch_layer_ = -1;
}

void FlashColumns::multiply(uint32_t layer, bool up, const int32_t* idx, const uint8_t* hit, const int32_t* slots,
                            const float* xs, size_t n, float* y, ThreadPool& pool) {
  const FlashHeader& h = image_.header();
  const TensorType type = up ? image_.up_type() : image_.down_type();
  const size_t col_len = up ? 2 * size_t(h.n_ff) : size_t(h.n_embd);
  const uint64_t stride = up ? h.up_col_stride : h.down_col_stride;
  const uint64_t col_bytes = up ? h.up_col_bytes : h.down_col_bytes;
  uint8_t* slab = layer_slots(layer, up);
  const int k = up ? 0 : 1;
  auto offset = [&](size_t c) { return up ? image_.up_offset(layer, c) : image_.down_offset(layer, c); };

  // Order: hits, then admitted misses, then streamed misses; xs_ and ptrs_ follow it.
  ptrs_.clear();
  xs_.clear();
  reads_.clear();
  stream_.clear();
  for (size_t i = 0; i < n; ++i) {
    if (hit[i]) {
      ptrs_.push_back(slab + size_t(slots[i]) * stride);
      xs_.push_back(xs[i]);
    }
  }
  const size_t n_hit = ptrs_.size();
  for (size_t i = 0; i < n; ++i) {
    if (!hit[i] && slots[i] >= 0) {
      uint8_t* dst = slab + size_t(slots[i]) * stride;
      reads_.push_back({offset(size_t(idx[i])), uint32_t(stride), dst});
      ptrs_.push_back(dst);
      xs_.push_back(xs[i]);
    } else if (!hit[i]) {
      stream_.push_back(i);
    }
  }
  const size_t n_admit = ptrs_.size() - n_hit;
  stats_.dram_bytes[k] += n_hit * col_bytes;
  stats_.flash_bytes[k] += (n - n_hit) * stride;
  stats_.flash_columns[k] += n - n_hit;

  const uint32_t t_admit = n_admit ? store_->submit(reads_) : 0;
  // Streamed misses in chunks through the two halves of the read buffer.
  const size_t half = staging_.size() / 2 / h.align * h.align, per_chunk = std::max<size_t>(1, half / stride);
  const size_t n_chunks = (stream_.size() + per_chunk - 1) / per_chunk;
  auto submit_chunk = [&](size_t c) {
    reads_.clear();
    uint8_t* buf = staging_.data() + (c % 2) * half;
    const size_t b = c * per_chunk, e = std::min(stream_.size(), b + per_chunk);
    for (size_t j = b; j < e; ++j) reads_.push_back({offset(size_t(idx[stream_[j]])), uint32_t(stride), buf + (j - b) * stride});
    return store_->submit(reads_);
  };
  uint32_t t_next = n_chunks ? submit_chunk(0) : 0;

  bool written = false;
  auto mul = [&](const uint8_t* const* p, const float* x, size_t m) {
    if (m == 0) return;
    colsparse_ptrs(type, col_len, p, x, m, y, written, &pool);
    written = true;
  };
  mul(ptrs_.data(), xs_.data(), n_hit);  // overlaps the reads just submitted
  if (n_admit) {
    store_->wait(t_admit);
    mul(ptrs_.data() + n_hit, xs_.data() + n_hit, n_admit);
  }
  for (size_t c = 0; c < n_chunks; ++c) {
    const uint32_t t = t_next;
    if (c + 1 < n_chunks) t_next = submit_chunk(c + 1);
    store_->wait(t);
    const uint8_t* buf = staging_.data() + (c % 2) * half;
    const size_t b = c * per_chunk, e = std::min(stream_.size(), b + per_chunk);
    chunk_ptrs_.resize(e - b);
    chunk_xs_.resize(e - b);
    for (size_t j = b; j < e; ++j) {
      chunk_ptrs_[j - b] = buf + (j - b) * stride;
      chunk_xs_[j - b] = xs[stream_[j]];
    }
    mul(chunk_ptrs_.data(), chunk_xs_.data(), e - b);
  }
  if (!written) std::memset(y, 0, col_len * sizeof(float));
}

}  // namespace dip
