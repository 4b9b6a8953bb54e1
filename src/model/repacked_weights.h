// Dense-product copies of weights in a kernel's own layout, made on first use: Q4_0 and Q4_K
// matrices repacked eight rows at a time (ops/repack_x8.h) where those kernels are the CPU's
// fastest, as llama.cpp repacks them. Only the weights that dense products meet are copied (a flash
// run's MLP never is), and the file's pages of a copied weight are let go as it is copied, so the
// copy takes their place in memory instead of adding to it. Thread-safe.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>

#include "model/weight.h"
#include "util/huge_buffer.h"

namespace dip {

class RepackedWeights {
 public:
  // release_source: w's bytes are a read-only file mapping whose pages may be let go.
  explicit RepackedWeights(bool release_source) : release_source_(release_source) {}

  // The repacked copy of w, or null where w keeps its GGUF layout (neither Q4_0 nor Q4_K, a row
  // count that is not a multiple of 8, or a CPU whose kernels read the GGUF layout).
  const uint8_t* x8(const Weight& w);

 private:
  bool release_source_;
  std::mutex mutex_;
  std::map<const uint8_t*, HugeBuffer> copies_;  // by the weight's data
};

}  // namespace dip
