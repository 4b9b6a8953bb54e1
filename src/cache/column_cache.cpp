#include "cache/column_cache.h"

#include <algorithm>

namespace dip {

ColumnCache::ColumnCache(size_t n_cols, size_t capacity, CachePolicy policy)
    : cached_(n_cols, 0), last_use_(n_cols, 0), uses_(n_cols, 0), in_use_(n_cols, 0),
      slot_of_(n_cols, -1), capacity_(std::min(capacity, n_cols)), policy_(policy) {
  if (policy_ == CachePolicy::kLru) {
    prev_.assign(n_cols, -1);
    next_.assign(n_cols, -1);
  }
  free_slots_.resize(capacity_);
  for (size_t i = 0; i < capacity_; ++i) free_slots_[i] = int32_t(capacity_ - 1 - i);  // pops 0, 1, ...
}

void ColumnCache::unlink(int32_t c) {
  const int32_t p = prev_[size_t(c)], n = next_[size_t(c)];
  (p >= 0 ? next_[size_t(p)] : head_) = n;
  (n >= 0 ? prev_[size_t(n)] : tail_) = p;
  prev_[size_t(c)] = next_[size_t(c)] = -1;
}

void ColumnCache::push_back(int32_t c) {
  prev_[size_t(c)] = tail_;
  next_[size_t(c)] = -1;
  (tail_ >= 0 ? next_[size_t(tail_)] : head_) = c;
  tail_ = c;
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
    size_t evict = 0;
    auto drop = [&](size_t v) {
      cached_[v] = 0;
      free_slots_.push_back(slot_of_[v]);
      slot_of_[v] = -1;
    };
    if (policy_ == CachePolicy::kLru) {
      // The list is in (last use, index) order: its first `need` columns not in use are the
      // victims (what sorting every candidate would pick, without the scan and the sort).
      for (int32_t c = head_; c >= 0 && evict < need;) {
        const int32_t nx = next_[size_t(c)];
        if (!in_use_[size_t(c)]) {
          unlink(c);
          drop(size_t(c));
          ++evict;
        }
        c = nx;
      }
    } else {
      victims_.clear();
      for (size_t c = 0; c < cached_.size(); ++c) {
        if (cached_[c] && !in_use_[c]) victims_.push_back(int32_t(c));
      }
      evict = std::min(need, victims_.size());
      auto less_used = [&](int32_t a, int32_t b) {
        if (uses_[a] != uses_[b]) return uses_[a] < uses_[b];
        if (last_use_[a] != last_use_[b]) return last_use_[a] < last_use_[b];
        return a < b;
      };
      if (evict < victims_.size()) std::nth_element(victims_.begin(), victims_.begin() + evict, victims_.end(), less_used);
      for (size_t i = 0; i < evict; ++i) drop(size_t(victims_[i]));
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
    if (policy_ == CachePolicy::kLru && cached_[c]) {  // most recent now (cols ascend: index order)
      if (prev_[c] >= 0 || head_ == int32_t(c)) unlink(int32_t(c));
      push_back(int32_t(c));
    }
    in_use_[c] = 0;
    if (slots) slots[i] = slot_of_[c];
  }
  return hits;
}

size_t ColumnCache::prefetch(const int32_t* cols, size_t n, int32_t* admitted, int32_t* slots) {
  if (policy_ != CachePolicy::kLru || capacity_ == 0) return 0;
  ++clock_;  // the admitted columns are the newest, in index order (the list's invariant)
  size_t misses = 0;
  for (size_t i = 0; i < n; ++i) {
    in_use_[size_t(cols[i])] = 1;
    misses += !cached_[size_t(cols[i])];
  }
  size_t room = capacity_ - size_;
  for (int32_t c = head_; c >= 0 && room < misses;) {
    const int32_t nx = next_[size_t(c)];
    if (!in_use_[size_t(c)]) {
      unlink(c);
      cached_[size_t(c)] = 0;
      free_slots_.push_back(slot_of_[size_t(c)]);
      slot_of_[size_t(c)] = -1;
      --size_;
      ++room;
    }
    c = nx;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t c = size_t(cols[i]);
    in_use_[c] = 0;
    if (cached_[c] || room == 0) continue;
    cached_[c] = 1;
    slot_of_[c] = free_slots_.back();
    free_slots_.pop_back();
    ++size_;
    --room;
    last_use_[c] = clock_;
    push_back(int32_t(c));
    admitted[m] = int32_t(c);
    slots[m] = slot_of_[c];
    ++m;
  }
  return m;
}

}  // namespace dip
