#include "cache/column_cache.h"

#include <algorithm>

namespace dip {

ColumnCache::ColumnCache(size_t n_cols, size_t capacity, CachePolicy policy)
    : cached_(n_cols, 0), last_use_(n_cols, 0), uses_(n_cols, 0), in_use_(n_cols, 0),
      slot_of_(n_cols, -1), capacity_(std::min(capacity, n_cols)), policy_(policy) {
  free_slots_.resize(capacity_);
  for (size_t i = 0; i < capacity_; ++i) free_slots_[i] = int32_t(capacity_ - 1 - i);  // pops 0, 1, ...
}

size_t ColumnCache::access(const int32_t* cols, size_t n, uint8_t* hit_mask, int32_t* slots) {
  ++clock_;
  size_t hits = 0, misses = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t c = size_t(cols[i]);
    const bool hit = cached_[c] != 0;
    hits += hit;
    misses += !hit;
    if (hit_mask) hit_mask[i] = hit;
    in_use_[c] = 1;
  }
  hits_ += hits;
  accesses_ += n;
  // Room for the misses: free slots first, then victims among resident columns this token
  // does not use, least recently (LRU) or least frequently (LFU, then least recently) used.
  size_t admit = std::min(misses, capacity_);
  if (size_ + admit > capacity_) {
    const size_t need = size_ + admit - capacity_;
    victims_.clear();
    for (size_t c = 0; c < cached_.size(); ++c) {
      if (cached_[c] && !in_use_[c]) victims_.push_back(int32_t(c));
    }
    const size_t evict = std::min(need, victims_.size());
    auto older = [&](int32_t a, int32_t b) {
      if (policy_ == CachePolicy::kLfu && uses_[a] != uses_[b]) return uses_[a] < uses_[b];
      if (last_use_[a] != last_use_[b]) return last_use_[a] < last_use_[b];
      return a < b;
    };
    if (evict < victims_.size()) std::nth_element(victims_.begin(), victims_.begin() + evict, victims_.end(), older);
    for (size_t i = 0; i < evict; ++i) {
      const size_t v = size_t(victims_[i]);
      cached_[v] = 0;
      free_slots_.push_back(slot_of_[v]);
      slot_of_[v] = -1;
    }
    size_ -= evict;
    admit = capacity_ - size_;
    admit = std::min(admit, misses);
  }
  // Admit misses (in column order) while there is room.
  for (size_t i = 0; i < n && admit > 0; ++i) {
    const size_t c = size_t(cols[i]);
    if (!cached_[c]) {
      cached_[c] = 1;
      slot_of_[c] = free_slots_.back();
      free_slots_.pop_back();
      ++size_;
      --admit;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t c = size_t(cols[i]);
    last_use_[c] = clock_;
    ++uses_[c];
    in_use_[c] = 0;
    if (slots) slots[i] = slot_of_[c];
  }
  return hits;
}

}  // namespace dip
