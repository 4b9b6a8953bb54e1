// The MLP columns of a flash run: per layer, a DRAM slab of cache slots for the up+gate bundles
// and one for the down columns (the slots a ColumnCache hands out), the flash store that fills
// them, and read buffers for columns the cache does not admit. One call multiplies a token's
// kept columns: hits from their slots while the misses are being read, then the misses as
// they arrive, so flash reads overlap DRAM compute.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "flash/flash_image.h"
#include "flash/flash_store.h"
#include "util/huge_buffer.h"

namespace dip {

class ThreadPool;

struct FlashColumnStats {
  uint64_t dram_bytes[2] = {0, 0};   // column bytes multiplied from the cache: [up+gate, down]
  uint64_t flash_bytes[2] = {0, 0};  // column bytes read from flash
  uint64_t flash_columns[2] = {0, 0};
  uint64_t prefetch_columns = 0;  // up+gate bundles read ahead of their layer (prefetch())
  uint64_t prefetch_bytes = 0;
};

class FlashColumns {
 public:
  // Capacities: floor(cache_fraction * columns) per matrix (the uniform split). staging: bytes
  // of the read buffers (0: staging_bytes(image); tests make it small to exercise chunking).
  FlashColumns(const FlashImage& image, const FlashStoreOptions& opts, double cache_fraction,
               uint64_t staging = 0);

  const FlashImage& image() const { return image_; }
  size_t capacity(bool up) const { return up ? up_cap_ : down_cap_; }
  // Bytes of the cache slabs (what the caches hold when full).
  uint64_t slab_bytes() const;
  uint64_t staging_bytes() const { return staging_.size(); }

  // y = sum_i xs[i] * column idx[i] of layer's up+gate (up) or down matrix. hit[i]: the column
  // is in slot slots[i]; a miss with slots[i] >= 0 is read into that slot, one with -1 into a
  // read buffer. y is overwritten.
  void multiply(uint32_t layer, bool up, const int32_t* idx, const uint8_t* hit,
                const int32_t* slots, const float* xs, size_t n, float* y, ThreadPool& pool);

  // Next-layer prefetch: starts reading up+gate bundles `cols` of `layer` into their cache
  // `slots` (ColumnCache::prefetch admitted them) while the caller computes something else;
  // finish_prefetch(layer) waits for them, and must come before the layer's cache is accessed
  // again (a slot may only be handed out once its read is done).
  void prefetch(uint32_t layer, const int32_t* cols, const int32_t* slots, size_t n);
  void finish_prefetch(uint32_t layer);
  bool prefetch_enabled() const { return prefetch_enabled_; }
  void set_prefetch_enabled(bool on) { prefetch_enabled_ = on; }

  // Admitted misses are read in parts of at least this many bytes, in the order they are
  // summed, each part its own batch: the sum takes a part's columns (and checks them) as soon
  // as that part is in, while the device reads the next ones. A part ends only where the next
  // read would not join it (farther than the store's gap), so parts add no requests. Streamed
  // misses go in chunks of at least this size. Tests make it small to get many parts.
  void set_read_part_bytes(uint64_t bytes) { read_part_bytes_ = std::max<uint64_t>(1, bytes); }

  FlashStore& store() { return *store_; }
  const FlashStore& store() const { return *store_; }
  const FlashColumnStats& stats() const { return stats_; }
  void reset_stats();

 private:
  const FlashImage& image_;
  std::unique_ptr<FlashStore> store_;
  size_t up_cap_ = 0, down_cap_ = 0;
  // All layers' slots in one buffer per kind (layer l's slots follow layer l-1's), so huge-page
  // rounding costs at most one page per kind.
  HugeBuffer up_slab_, down_slab_;
  HugeBuffer staging_;
  FlashColumnStats stats_;
  uint8_t* layer_slots(uint32_t layer, bool up);  // slot 0 of the layer's up+gate or down cache
  // 256 KiB: a part's requests still reach the device's bandwidth (dip flash-probe), and the
  // first part's wait is a fraction of a matrix's.
  uint64_t read_part_bytes_ = 256u << 10;
  uint64_t max_gap_ = 0;  // the store's (FlashStoreOptions::max_gap)
  bool prefetch_enabled_ = false;
  int64_t prefetch_layer_ = -1;  // the layer whose prefetch is in flight, or -1
  uint32_t prefetch_ticket_ = 0;
  // scratch
  std::vector<const uint8_t*> ptrs_;
  std::vector<float> xs_;
  std::vector<ColumnRead> reads_;
  std::vector<size_t> stream_;      // positions of not-admitted misses
  std::vector<size_t> admit_;       // positions of admitted misses, in idx order
  std::vector<int32_t> part_of_;    // per position: its admitted part, or -1
  std::vector<size_t> part_begin_;  // part p: admit_[part_begin_[p], part_begin_[p + 1])
  std::vector<uint32_t> part_tickets_;
  std::vector<size_t> chunk_begin_;   // streamed chunk c: stream_[chunk_begin_[c], [c + 1])
  std::vector<size_t> stream_chunk_;  // per streamed miss: its chunk, or SIZE_MAX before it
  std::vector<uint32_t> tickets_;
  bool verify_ = true;
  std::vector<int32_t> prefetch_cols_, prefetch_slots_;
  // Fails, naming the image, the layer and the column, unless every column `cols[i]` (bytes
  // at ptrs[i]) matches the image's checksum. Checked on the pool's threads: hashing is bound by
  // DRAM bandwidth, which one core does not saturate.
  void verify(uint32_t layer, bool up, const int32_t* cols, const uint8_t* const* ptrs, size_t n,
              ThreadPool* pool) const;
  std::vector<int32_t> verify_cols_;
  std::vector<const uint8_t*> verify_ptrs_;
};

}  // namespace dip
