// The MLP columns of a flash run: per layer, a DRAM slab of cache slots for the up+gate bundles
// and one for the down columns (the slots a ColumnCache hands out), the flash store that fills
// them, and read buffers for columns the cache does not admit. One call multiplies a token's
// kept columns: hits from their slots while the misses are being read, then the misses as
// they arrive, so flash reads overlap DRAM compute.
#pragma once
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
};

class FlashColumns {
 public:
  // Capacities: floor(cache_fraction * columns) per matrix (the uniform split). staging: bytes
  // of the read buffers (0: staging_bytes(image); tests make it small to exercise chunking).
  FlashColumns(const FlashImage& image, const FlashStoreOptions& opts, double cache_fraction, uint64_t staging = 0);

  const FlashImage& image() const { return image_; }
  size_t capacity(bool up) const { return up ? up_cap_ : down_cap_; }
  // Bytes of the cache slabs (what the caches hold when full).
  uint64_t slab_bytes() const;
  uint64_t staging_bytes() const { return staging_.size(); }

  // y = sum_i xs[i] * column idx[i] of layer's up+gate (up) or down matrix. hit[i]: the column
  // is in slot slots[i]; a miss with slots[i] >= 0 is read into that slot, one with -1 into a
  // read buffer. y is overwritten.
  void multiply(uint32_t layer, bool up, const int32_t* idx, const uint8_t* hit, const int32_t* slots, const float* xs,
                size_t n, float* y, ThreadPool& pool);

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
  // scratch
  std::vector<const uint8_t*> ptrs_;
  std::vector<float> xs_;
  std::vector<ColumnRead> reads_;
  std::vector<size_t> stream_;  // positions of not-admitted misses
  std::vector<const uint8_t*> chunk_ptrs_;
  std::vector<float> chunk_xs_;
};

}  // namespace dip
