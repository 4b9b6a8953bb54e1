#include "cache/column_cache.h"

#include <algorithm>

namespace dip {

ColumnCache::ColumnCache(size_t n_cols, size_t capacity, CachePolicy policy)
    : cached_(n_cols, 0),
      last_use_(n_cols, 0),
      uses_(n_cols, 0),
      in_use_(n_cols, 0),
      slot_of_(n_cols, -1),
      capacity_(std::min(capacity, n_cols)),
      policy_(policy) {
  if (policy_ == CachePolicy::kLru) {
    prev_.assign(n_cols, -1);
    next_.assign(n_cols, -1);
  }
  free_slots_.resize(capacity_);
  for (size_t i = 0; i < capacity_; ++i)
    free_slots_[i] = int32_t(capacity_ - 1 - i);  // pops 0, 1, ...
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

void ColumnCache::evict(size_t c) {
  if (policy_ == CachePolicy::kLru) unlink(int32_t(c));
  cached_[c] = 0;
  free_slots_.push_back(slot_of_[c]);
  slot_of_[c] = -1;
  --size_;
}

size_t ColumnCache::evict_lru_unused(size_t need) {
  // The list is in (last use, index) order: its first `need` columns not in use are the
  // victims (what sorting every candidate would pick, without the scan and the sort).
  size_t evicted = 0;
  for (int32_t c = head_; c >= 0 && evicted < need;) {
    const int32_t nx = next_[size_t(c)];
    if (!in_use_[size_t(c)]) {
      evict(size_t(c));
      ++evicted;
    }
    c = nx;
  }
  return evicted;
}

void ColumnCache::admit(size_t c) {
  cached_[c] = 1;
  slot_of_[c] = free_slots_.back();
  free_slots_.pop_back();
  ++size_;
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
  size_t n_admit = std::min(misses, capacity_);
  if (size_ + n_admit > capacity_) {
    const size_t need = size_ + n_admit - capacity_;
    if (policy_ == CachePolicy::kLru) {
      evict_lru_unused(need);
    } else {
      victims_.clear();
      for (size_t c = 0; c < cached_.size(); ++c) {
        if (cached_[c] && !in_use_[c]) victims_.push_back(int32_t(c));
      }
      const size_t n_evict = std::min(need, victims_.size());
      auto less_used = [&](int32_t a, int32_t b) {
        if (uses_[a] != uses_[b]) return uses_[a] < uses_[b];
        if (last_use_[a] != last_use_[b]) return last_use_[a] < last_use_[b];
        return a < b;
      };
      if (n_evict < victims_.size())
        std::nth_element(victims_.begin(), victims_.begin() + n_evict, victims_.end(), less_used);
      for (size_t i = 0; i < n_evict; ++i) evict(size_t(victims_[i]));
    }
    n_admit = std::min(capacity_ - size_, misses);
  }
  // Admit misses (in column order) while there is room.
  for (size_t i = 0; i < n && n_admit > 0; ++i) {
    const size_t c = size_t(cols[i]);
    if (!cached_[c]) {
      admit(c);
      --n_admit;
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
  if (size_ + misses > capacity_) evict_lru_unused(size_ + misses - capacity_);
  size_t m = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t c = size_t(cols[i]);
    in_use_[c] = 0;
    if (cached_[c] || size_ == capacity_) continue;
    admit(c);
    last_use_[c] = clock_;
    push_back(int32_t(c));
    admitted[m] = int32_t(c);
    slots[m] = slot_of_[c];
    ++m;
  }
  return m;
}

}  // namespace dip
