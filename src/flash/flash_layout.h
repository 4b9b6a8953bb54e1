// Co-activation layout of a flash image's columns: columns that a pruned run keeps for the same
// tokens are placed side by side in the file, so that the misses of one token join into fewer,
// larger reads (a request has a fixed cost on flash, whatever its size).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dip {

class ThreadPool;

// Which columns of one matrix were kept for which tokens: column c's bits are
// bits[c * words, (c + 1) * words), bit t of them set when token t kept it.
struct KeptColumns {
  size_t n_cols = 0, words = 0;
  std::vector<uint64_t> bits;
  void resize(size_t cols, size_t tokens) {
    n_cols = cols;
    words = (tokens + 63) / 64;
    bits.assign(n_cols * words, 0);
  }
  void set(size_t col, size_t token) { bits[col * words + token / 64] |= 1ull << (token % 64); }
};

// The slot of each column (a permutation of [0, n_cols)): a greedy chain that starts at the most
// often kept column and appends, each time, the column most similar to the last one (Jaccard
// similarity of their kept tokens; ties to the lower index). Columns never kept go last, in
// index order. O(n_cols^2 * words), the similarity scans split over the pool.
std::vector<uint32_t> coactivation_slots(const KeptColumns& kept, ThreadPool& pool);

// How often, on average over the tokens, a column is kept next to the column before it in the
// given slots: the share of kept columns whose left neighbour in the file is kept for the same
// token (0 for a random order at low density, 1 when every token's columns are one run).
double adjacency(const KeptColumns& kept, const std::vector<uint32_t>& slots);

}  // namespace dip
