#include "model/rope_rows.h"

#include <algorithm>

namespace dip {

namespace {

void reorder(std::vector<float>& w, size_t cols, size_t rows, uint32_t head_dim, bool to_gguf) {
  std::vector<float> out(w.size());
  for (size_t h = 0; h < rows / head_dim; ++h) {
    for (uint32_t i = 0; i < head_dim / 2; ++i) {
      for (uint32_t s = 0; s < 2; ++s) {
        const size_t gguf_row = h * head_dim + 2 * i + s,
                     hf_row = h * head_dim + s * head_dim / 2 + i;
        const size_t src = to_gguf ? hf_row : gguf_row, dst = to_gguf ? gguf_row : hf_row;
        std::copy(&w[src * cols], &w[src * cols] + cols, &out[dst * cols]);
      }
    }
  }
  w = std::move(out);
}

}  // namespace

void interleave_rope_rows(std::vector<float>& w, size_t cols, size_t rows, uint32_t head_dim) {
  reorder(w, cols, rows, head_dim, true);
}

void deinterleave_rope_rows(std::vector<float>& w, size_t cols, size_t rows, uint32_t head_dim) {
  reorder(w, cols, rows, head_dim, false);
}

}  // namespace dip
