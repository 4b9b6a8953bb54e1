#include "model/repacked_weights.h"

#include <algorithm>

#include "io/mapped_file.h"
#include "ops/repack_x8.h"

namespace dip {

const uint8_t* RepackedWeights::x8(const Weight& w) {
  if (w.rows % 8 != 0 || w.rows == 0 || !x8_preferred(w.type)) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = copies_.find(w.data);
  if (it != copies_.end()) return it->second.data();
  const size_t group_bytes = 8 * row_bytes(w.type, w.cols);
  // Ordinary pages: a huge page would hold the tail of the copy resident beyond its bytes, and
  // a stream of whole rows gains little from fewer TLB entries.
  HugeBuffer copy(w.bytes(), false);
  // A few hundred KiB at a time, each slice's file pages let go once copied: the process never
  // holds a whole large matrix twice (the output matrix of a large vocabulary is hundreds of MiB).
  const size_t groups = w.rows / 8, step = std::max<size_t>(1, (size_t(256) << 10) / group_bytes);
  for (size_t g = 0; g < groups; g += step) {
    const size_t n = std::min(step, groups - g);
    repack_x8(w.type, w.data + g * group_bytes, 8 * n, w.cols, copy.data() + g * group_bytes);
    if (release_source_) release_mapped_pages(w.data + g * group_bytes, n * group_bytes);
  }
  return copies_.emplace(w.data, std::move(copy)).first->second.data();
}

}  // namespace dip
