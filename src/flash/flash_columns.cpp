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
  max_gap_ = opts.max_gap;
  up_cap_ = size_t(std::floor(cache_fraction * double(h.n_embd)));
  down_cap_ = size_t(std::floor(cache_fraction * double(h.n_ff)));
  // Untouched slab pages cost nothing until a column is read into them.
  if (up_cap_) up_slab_ = HugeBuffer(h.n_layer * up_cap_ * h.up_col_stride);
  if (down_cap_) down_slab_ = HugeBuffer(h.n_layer * down_cap_ * h.down_col_stride);
  // At least two chunks of one kernel group of columns each (see multiply()).
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
  // complete. Hits are summed while the misses are read, up to the first miss still in flight;
  // admitted misses are read in parts (set_read_part_bytes), so the sum follows the reads part
  // by part instead of waiting for all of them.
  ptrs_.assign(n, nullptr);  // where column i's bytes are (or will be, for streamed misses)
  part_of_.assign(n, -1);
  admit_.clear();
  stream_.clear();
  size_t n_hit = 0;
  for (size_t i = 0; i < n; ++i) {
    if (hit[i]) {
      ptrs_[i] = slab + size_t(slots[i]) * stride;
      ++n_hit;
    } else if (slots[i] >= 0) {
      ptrs_[i] = slab + size_t(slots[i]) * stride;
      admit_.push_back(i);
    } else {
      stream_.push_back(i);
    }
  }
  stats_.dram_bytes[k] += n_hit * col_bytes;
  stats_.flash_bytes[k] += (n - n_hit) * stride;
  stats_.flash_columns[k] += n - n_hit;
  // Fills reads_ with the reads of positions[b, ...): at least min_cols of them (or as many as
  // are left), at most max_cols, ending only where the next read would not join the last one
  // (farther than the store's gap), so a boundary costs no request. dst(j): where positions[j]
  // goes. Returns the end.
  auto take_reads = [&](const std::vector<size_t>& positions, size_t b, size_t min_cols,
                        size_t max_cols, auto dst) {
    reads_.clear();
    size_t j = b;
    for (; j < positions.size() && j - b < max_cols; ++j) {
      const uint64_t off = offset(size_t(idx[positions[j]]));
      if (j - b >= min_cols) {
        const uint64_t end = reads_.back().offset + stride;
        if (off < end || off - end > max_gap_) break;
      }
      reads_.push_back({off, uint32_t(stride), dst(j)});
    }
    return j;
  };
  const size_t part_cols = std::max<uint64_t>(1, (read_part_bytes_ + stride - 1) / stride);
  part_begin_.assign(1, 0);
  part_tickets_.clear();
  while (part_begin_.back() < admit_.size()) {
    const size_t b = part_begin_.back();
    const size_t e = take_reads(admit_, b, part_cols, SIZE_MAX,
                                [&](size_t j) { return slab + size_t(slots[admit_[j]]) * stride; });
    for (size_t j = b; j < e; ++j) part_of_[admit_[j]] = int32_t(part_tickets_.size());
    part_tickets_.push_back(store_->submit(reads_));
    part_begin_.push_back(e);
  }
  // Checks the columns at positions[b, e) (just read) against the image.
  auto verify_read = [&](const std::vector<size_t>& positions, size_t b, size_t e) {
    verify_cols_.clear();
    verify_ptrs_.clear();
    for (size_t j = b; j < e; ++j) {
      verify_cols_.push_back(idx[positions[j]]);
      verify_ptrs_.push_back(ptrs_[positions[j]]);
    }
    verify(layer, up, verify_cols_.data(), verify_ptrs_.data(), verify_cols_.size(), &pool);
  };
  size_t parts_ready = 0;                  // admitted parts whose reads are complete and checked
  auto wait_parts = [&](size_t through) {  // parts [parts_ready, through]
    for (; parts_ready <= through; ++parts_ready) {
      store_->wait(part_tickets_[parts_ready]);
      verify_read(admit_, part_begin_[parts_ready], part_begin_[parts_ready + 1]);
    }
  };

  // Streamed misses in chunks through a ring of slots in the read buffer. A chunk holds at least
  // min_chunk columns (one admitted part's bytes, and at least one kernel group of columns, so a
  // group never needs more than two chunks at once) and ends, like a part, only where the next
  // read would not join it, or when its slot is full. A slot is reused once every column of the
  // chunk a ring before it has been summed. (The constructor makes the buffer hold at least two
  // groups of the longest columns.)
  const size_t min_chunk = std::clamp<size_t>(std::max<uint64_t>(read_part_bytes_, stride) / stride,
                                              ColSparseSum::kGroup, staging_.size() / (2 * stride));
  const size_t slot_cols =
      std::max(min_chunk, std::min(2 * min_chunk, staging_.size() / (2 * stride)));
  const size_t n_slots = staging_.size() / (slot_cols * stride);
  std::vector<uint32_t>& tickets = tickets_;  // per chunk submitted
  tickets.clear();
  chunk_begin_.assign(1, 0);  // chunk c: stream_[chunk_begin_[c], chunk_begin_[c + 1])
  stream_chunk_.assign(stream_.size(), SIZE_MAX);
  size_t ready = 0;  // chunks whose reads are complete and checked
  auto submit_chunk = [&] {
    const size_t c = tickets.size(), b = chunk_begin_.back();
    uint8_t* buf = staging_.data() + (c % n_slots) * slot_cols * stride;
    const size_t e = take_reads(stream_, b, min_chunk, slot_cols, [&](size_t j) {
      uint8_t* dst = buf + (j - b) * stride;
      ptrs_[stream_[j]] = dst;
      stream_chunk_[j] = c;
      return dst;
    });
    chunk_begin_.push_back(e);
    tickets.push_back(store_->submit(reads_));
  };
  auto refill = [&](size_t consumed) {  // columns [0, consumed) are summed
    // (chunk_begin_[c + 1] - 1: the stream index of chunk c's last column)
    while (chunk_begin_.back() < stream_.size() &&
           (tickets.size() < n_slots ||
            stream_[chunk_begin_[tickets.size() - n_slots + 1] - 1] < consumed))
      submit_chunk();
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
        if (stream_chunk_[s] >= ready) break;
        ++s;
      } else if (part_of_[e] >= int32_t(parts_ready)) {
        break;
      }
      ++e;
    }
    const size_t m = sum.acceptable(e - k0);
    if (m > 0) {
      sum.add(ptrs_.data() + k0, xs_.data() + k0, m);
      while (next_stream < stream_.size() && stream_[next_stream] < k0 + m) ++next_stream;
      refill(k0 + m);
      store_->poll();  // keep the device's queue full while this thread sums
      continue;
    }
    // Wait for what the first unavailable column needs.
    if (s < stream_.size() && stream_[s] == e) {
      refill(k0);
      const size_t c = stream_chunk_[s];
      if (c == SIZE_MAX) fail("internal: flash read of column {} needed before it could start", e);
      for (; ready <= c; ++ready) {
        store_->wait(tickets[ready]);
        verify_read(stream_, chunk_begin_[ready], chunk_begin_[ready + 1]);
      }
    } else {
      wait_parts(size_t(part_of_[e]));
    }
  }
  // (Every admitted column was summed, so every part was waited for.)
  sum.finish();
}

}  // namespace dip
