// The engine's token-by-token mask choice (SparseMlp::choose_mask + the cache access) over
// scores from a file, for the training tool's test (tools/train/test_masks.py): both sides get
// the same scores, the masks must agree.
//   mask_replay IN OUT   IN: u32 batch, T, n, k, capacity, block; f32 gamma; batch*T*n f32 scores
//                        OUT: batch*T*n bytes, 1 where the column is kept
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <vector>

#include "cache/column_cache.h"
#include "sparsity/select.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: mask_replay IN OUT\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  uint32_t h[6];
  float gamma = 1;
  in.read(reinterpret_cast<char*>(h), sizeof h);
  in.read(reinterpret_cast<char*>(&gamma), 4);
  const size_t B = h[0], T = h[1], n = h[2], k = h[3], cap = h[4];
  const uint32_t block = h[5];
  std::vector<float> scores(B * T * n);
  in.read(reinterpret_cast<char*>(scores.data()), std::streamsize(scores.size() * 4));
  if (!in || k == 0 || k > n || block == 0) {
    std::fprintf(stderr, "%s: truncated or bad header\n", argv[1]);
    return 1;
  }
  std::vector<uint8_t> masks(B * T * n, 0);
  std::vector<int32_t> idx;
  std::vector<uint32_t> topk_scratch;
  std::vector<float> block_score;
  std::vector<int32_t> block_idx;
  std::vector<float> scratch;
  std::vector<uint8_t> hits(n);
  std::vector<int32_t> slots(n);
  for (size_t b = 0; b < B; ++b) {
    dip::ColumnCache cache(n, cap, dip::CachePolicy::kLru);
    for (size_t t = 0; t < T; ++t) {
      float* s = &scores[(b * T + t) * n];
      if (cache.capacity() > 0)
        dip::cache_aware_scores(s, n, cache.cached(), gamma, 0, false, scratch);
      dip::select_topk_blocks(s, n, k, block, idx, block_score, block_idx, topk_scratch, nullptr);
      if (cache.capacity() > 0) cache.access(idx.data(), idx.size(), hits.data(), slots.data());
      for (int32_t c : idx) masks[(b * T + t) * n + size_t(c)] = 1;
    }
  }
  std::ofstream out(argv[2], std::ios::binary);
  out.write(reinterpret_cast<const char*>(masks.data()), std::streamsize(masks.size()));
  return out ? 0 : 1;
}
