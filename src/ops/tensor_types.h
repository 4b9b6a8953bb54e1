// ggml tensor types: ids as stored in GGUF, block geometry, and which ones this engine runs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace dip {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  BF16 = 30,
};

// ggml's name for any type id ("Q4_K", "IQ2_XXS", ...), or "type<N>" for unknown ids.
std::string ggml_type_name(uint32_t id);
bool is_supported_type(uint32_t id);

// Elements per block and bytes per block (F32/F16/BF16 have blocks of one element).
size_t block_elems(TensorType t);
size_t block_bytes(TensorType t);
// Bytes of a row of n elements; n must be a multiple of block_elems.
size_t row_bytes(TensorType t, size_t n);

constexpr size_t kQK8_0 = 32;
constexpr size_t kQK4_0 = 32;

struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;              // fp16 scale
  uint8_t qs[kQK4_0 / 2];  // element j in low nibble of qs[j], element j+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18);

}  // namespace dip
