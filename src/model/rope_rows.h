// Row order of Llama's q/k projections. Hugging Face keeps each head's rows as [first halves...,
// second halves...] (rotate-half RoPE); llama.cpp's Llama GGUF interleaves them: row 2i+s of a
// head is row s*head_dim/2+i of Hugging Face's. Converters and adapters re-order with these.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dip {

// rows x cols floats (row-major), Hugging Face order -> GGUF order.
void interleave_rope_rows(std::vector<float>& w, size_t cols, size_t rows, uint32_t head_dim);
// GGUF order -> Hugging Face order.
void deinterleave_rope_rows(std::vector<float>& w, size_t cols, size_t rows, uint32_t head_dim);

}  // namespace dip
