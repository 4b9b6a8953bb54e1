#include "flash/flash_columns.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "flash/dram_budget.h"
#include "ops/colsparse.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {

FlashColumns::FlashColumns(const FlashImage& image, const FlashStoreOptions& opts,
                           double cache_fraction, uint64_t staging)
    : image_(image) {
  const FlashHeader& h = image.header();
  if (!(cache_fraction >= 0 && cache_fraction <= 1))
    fail("cache fraction {} is not in [0, 1]", cache_fraction);
  FlashStoreOptions o = opts;
  o.align = h.align;
  store_ = std::make_unique<FlashStore>(image.path(), o);
  verify_ = opts.verify_columns;
  up_cap_ = size_t(std::floor(cache_fraction * double(h.n_embd)));
  down_cap_ = size_t(std::floor(cache_fraction * double(h.n_ff)));
  // Untouched slab pages cost nothing until a column is read into them.
  if (up_cap_) up_slab_ = HugeBuffer(h.n_layer * up_cap_ * h.up_col_stride);
  if (down_cap_) down_slab_ = HugeBuffer(h.n_layer * down_cap_ * h.down_col_stride);
  // Each half holds at least one kernel group of columns (see multiply()).
  const uint64_t min_staging =
      2 * ColSparseSum::kGroup * std::max(h.up_col_stride, h.down_col_stride);
  staging_ = HugeBuffer(std::max(
      min_staging, staging ? staging / (2 * h.align) * (2 * h.align) : dip::staging_bytes(image)));
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
  return up ? up_slab_.data() + layer * up_cap_ * h.up_col_stride
            : down_slab_.data() + layer * down_cap_ * h.down_col_stride;
}

void FlashColumns::verify(uint32_t layer, bool up, const int32_t* cols, const uint8_t* const* ptrs,
                          size_t n, ThreadPool* pool) const {
  if (!verify_ || n == 0) return;
  const FlashHeader& h = image_.header();
  const size_t bytes = up ? h.up_col_bytes : h.down_col_bytes;
  std::atomic<int64_t> bad{-1};  // a failing column (workers must not throw)
  auto check = [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      const uint32_t c = uint32_t(cols[i]);
      if (column_checksum(ptrs[i], bytes, layer, up, c) != image_.checksum(layer, up, c)) bad = c;
    }
  };
  if (pool && n * bytes >= (256u << 10)) {
    pool->parallel_for(n, 1, check);
  } else {
    check(0, n);
  }
  if (bad >= 0) {
    fail(
        "{}: layer {} {} column {} as read does not match its checksum: the image is damaged or "
        "was changed "
        "(check it with --flash-verify; write it again with `dip convert MODEL IMAGE --flash`)",
        image_.path(), layer, up ? "up+gate" : "down", bad.load());
  }
}

void FlashColumns::prefetch(uint32_t layer, const int32_t* cols, const int32_t* slots, size_t n) {
  if (prefetch_layer_ >= 0) finish_prefetch(uint32_t(prefetch_layer_));  // one in flight at a time
  if (n == 0) return;
  const uint64_t stride = image_.header().up_col_stride;
  uint8_t* slab = layer_slots(layer, true);
  reads_.clear();
  for (size_t i = 0; i < n; ++i)
    reads_.push_back({image_.up_offset(layer, size_t(cols[i])), uint32_t(stride),
                      slab + size_t(slots[i]) * stride});
  prefetch_ticket_ = store_->submit(reads_);
  prefetch_layer_ = layer;
  prefetch_cols_.assign(cols, cols + n);
  prefetch_slots_.assign(slots, slots + n);
  stats_.prefetch_columns += n;
  stats_.prefetch_bytes += n * stride;
}

void FlashColumns::finish_prefetch(uint32_t layer) {
  if (prefetch_layer_ != int64_t(layer)) return;
  store_->wait(prefetch_ticket_);
  prefetch_layer_ = -1;
  const uint8_t* slab = layer_slots(layer, true);
  const uint64_t stride = image_.header().up_col_stride;
  verify_ptrs_.resize(prefetch_cols_.size());
  for (size_t i = 0; i < prefetch_cols_.size(); ++i)
    verify_ptrs_[i] = slab + size_t(prefetch_slots_[i]) * stride;
  verify(layer, true, prefetch_cols_.data(), verify_ptrs_.data(), prefetch_cols_.size(), nullptr);
}

void FlashColumns::multiply(uint32_t layer, bool up, const int32_t* idx, const uint8_t* hit,
                            const int32_t* slots, const float* xs, size_t n, float* y,
                            ThreadPool& pool) {
  const FlashHeader& h = image_.header();
  const TensorType type = up ? image_.up_type() : image_.down_type();
  const size_t col_len = up ? 2 * size_t(h.n_ff) : size_t(h.n_embd);
  const uint64_t stride = up ? h.up_col_stride : h.down_col_stride;
  const uint64_t col_bytes = up ? h.up_col_bytes : h.down_col_bytes;
  uint8_t* slab = layer_slots(layer, up);
  const int k = up ? 0 : 1;
  auto offset = [&](size_t c) {
    return up ? image_.up_offset(layer, c) : image_.down_offset(layer, c);
  };

  // Every kept column is summed in the order of idx, exactly as the DRAM path sums it
  // (ColSparseSum): the result does not depend on which columns hit the cache or when reads
  // complete. Hits are summed while the misses are read, up to the first miss still in flight.
  ptrs_.assign(n, nullptr);  // where column i's bytes are (or will be, for streamed misses)
  reads_.clear();
  stream_.clear();
  size_t n_hit = 0;
  for (size_t i = 0; i < n; ++i) {
    if (hit[i]) {
      ptrs_[i] = slab + size_t(slots[i]) * stride;
      ++n_hit;
    } else if (slots[i] >= 0) {
      uint8_t* dst = slab + size_t(slots[i]) * stride;
      reads_.push_back({offset(size_t(idx[i])), uint32_t(stride), dst});
      ptrs_[i] = dst;
    } else {
      stream_.push_back(i);
    }
  }
  const size_t n_admit = reads_.size();
  stats_.dram_bytes[k] += n_hit * col_bytes;
  stats_.flash_bytes[k] += (n - n_hit) * stride;
  stats_.flash_columns[k] += n - n_hit;
  const uint32_t t_admit = n_admit ? store_->submit(reads_) : 0;
  bool admitted_ready = n_admit == 0;

  // Streamed misses in chunks through the two halves of the read buffer; a chunk's half is
  // reused once every column of the chunk two before it has been summed. A chunk holds at least
  // one kernel group of columns, so a group never needs more than two chunks at once.
  const size_t half = staging_.size() / 2 / h.align * h.align;
  const size_t per_chunk = std::max<size_t>(1, half / stride);
  const size_t n_chunks = (stream_.size() + per_chunk - 1) / per_chunk;
  std::vector<uint32_t>& tickets = tickets_;
  tickets.assign(n_chunks, 0);
  size_t submitted = 0, ready = 0;  // chunks submitted; chunks whose reads are complete
  auto submit_chunk = [&](size_t c) {
    reads_.clear();
    uint8_t* buf = staging_.data() + (c % 2) * half;
    const size_t b = c * per_chunk, e = std::min(stream_.size(), b + per_chunk);
    for (size_t j = b; j < e; ++j) {
      uint8_t* dst = buf + (j - b) * stride;
      ptrs_[stream_[j]] = dst;
      reads_.push_back({offset(size_t(idx[stream_[j]])), uint32_t(stride), dst});
    }
    tickets[c] = store_->submit(reads_);
  };
  // Position in idx order of the last column of streamed chunk c.
  auto chunk_last = [&](size_t c) {
    return stream_[std::min(stream_.size(), (c + 1) * per_chunk) - 1];
  };
  auto refill = [&](size_t consumed) {  // columns [0, consumed) are summed
    while (submitted < n_chunks && (submitted < 2 || chunk_last(submitted - 2) < consumed))
      submit_chunk(submitted++);
  };
  refill(0);

  ColSparseSum sum(type, col_len, n, y, false, &pool);
  size_t next_stream = 0;  // index into stream_ of the first streamed miss not yet summed
  xs_.assign(xs, xs + n);
  while (sum.added() < n) {
    // The columns available from the cursor on: hits, admitted misses once their reads are done,
    // streamed misses of chunks already complete.
    const size_t k0 = sum.added();
    size_t e = k0, s = next_stream;
    while (e < n) {
      if (s < stream_.size() && stream_[s] == e) {
        if (s / per_chunk >= ready) break;
        ++s;
      } else if (!hit[e] && !admitted_ready) {
        break;
      }
      ++e;
    }
    const size_t m = sum.acceptable(e - k0);
    if (m > 0) {
      sum.add(ptrs_.data() + k0, xs_.data() + k0, m);
      while (next_stream < stream_.size() && stream_[next_stream] < k0 + m) ++next_stream;
      refill(k0 + m);
      continue;
    }
    // Wait for what the first unavailable column needs.
    if (s < stream_.size() && stream_[s] == e) {
      const size_t c = s / per_chunk;
      refill(k0);
      if (c >= submitted) fail("internal: flash chunk {} needed before it could be read", c);
      for (; ready <= c; ++ready) {
        store_->wait(tickets[ready]);
        const size_t b = ready * per_chunk, e = std::min(stream_.size(), b + per_chunk);
        verify_cols_.clear();
        verify_ptrs_.clear();
        for (size_t j = b; j < e; ++j) {
          verify_cols_.push_back(idx[stream_[j]]);
          verify_ptrs_.push_back(ptrs_[stream_[j]]);
        }
        verify(layer, up, verify_cols_.data(), verify_ptrs_.data(), verify_cols_.size(), &pool);
      }
    } else {
      store_->wait(t_admit);
      admitted_ready = true;
      verify_cols_.clear();
      verify_ptrs_.clear();
      for (size_t i = 0; i < n; ++i) {
        if (!hit[i] && slots[i] >= 0) {
          verify_cols_.push_back(idx[i]);
          verify_ptrs_.push_back(ptrs_[i]);
        }
      }
      verify(layer, up, verify_cols_.data(), verify_ptrs_.data(), verify_cols_.size(), &pool);
    }
  }
  if (!admitted_ready) store_->wait(t_admit);  // (every admitted column was summed, so done)
  sum.finish();
}

}  // namespace dip
