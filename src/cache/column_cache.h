// A per-matrix column cache: which of a matrix's columns are resident in DRAM, with LRU or
// LFU eviction and a capacity in columns. In all-in-DRAM runs it models the cache (DIP-CA reads
// its state, runs report its hit rate); the flash-resident store keeps its slots in step with it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cache/cache_policy.h"

namespace dip {

class ColumnCache {
 public:
  ColumnCache() = default;
  ColumnCache(size_t n_cols, size_t capacity, CachePolicy policy);

  size_t n_cols() const { return cached_.size(); }
  size_t capacity() const { return capacity_; }
  size_t size() const { return size_; }
  // 1 where the column is resident (the state DIP-CA rescoring reads).
  const uint8_t* cached() const { return cached_.data(); }
  bool contains(size_t c) const { return cached_[c] != 0; }

  // One token's use of `cols` (ascending, distinct): counts hits, then admits the misses,
  // evicting by the policy among columns this token does not use. Returns the hits; with
  // `hit_mask` non-null, hit_mask[i] = 1 for each cols[i] that was resident. With `slots`
  // non-null, slots[i] = the slot (0 .. capacity-1) that holds cols[i] after the call, or -1
  // for a miss that was not admitted (more misses than room): the flash store reads hits from
  // their slots, admitted misses into theirs, the rest into a read buffer.
  size_t access(const int32_t* cols, size_t n, uint8_t* hit_mask = nullptr,
                int32_t* slots = nullptr);
  int32_t slot(size_t c) const { return slot_of_[c]; }

  // Makes `cols` (ascending, distinct) resident ahead of the access that will use them, without
  // counting an access or a hit: a prefetch. Columns already resident stay as they are; the
  // others are admitted in order while there is room (free slots, then LRU victims that are not
  // among `cols`), as the most recently used. Writes each admitted column and its slot to
  // admitted[] / slots[] and returns how many. LRU only (LFU: admits nothing).
  size_t prefetch(const int32_t* cols, size_t n, int32_t* admitted, int32_t* slots);

  uint64_t hits() const { return hits_; }
  uint64_t accesses() const { return accesses_; }

 private:
  std::vector<uint8_t> cached_;
  std::vector<uint64_t> last_use_, uses_;
  std::vector<uint8_t> in_use_;   // scratch: used by the current token
  std::vector<int32_t> victims_;  // scratch
  std::vector<int32_t> slot_of_;  // per column: its slot, or -1
  std::vector<int32_t> free_slots_;
  // LRU: the resident columns in eviction order (least recently used first; columns of one
  // token by index), a doubly linked list through prev_/next_ (-1 ends it).
  std::vector<int32_t> prev_, next_;
  int32_t head_ = -1, tail_ = -1;
  void unlink(int32_t c);
  void push_back(int32_t c);
  void evict(size_t c);                  // resident -> free slot (and off the LRU list)
  size_t evict_lru_unused(size_t need);  // up to `need` least recent columns not in use
  void admit(size_t c);                  // a free slot -> resident (the caller lists it)
  size_t capacity_ = 0, size_ = 0;
  CachePolicy policy_ = CachePolicy::kLru;
  uint64_t clock_ = 0, hits_ = 0, accesses_ = 0;
};

}  // namespace dip
