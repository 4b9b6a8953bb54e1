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
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,  // activations of K-quant products only, never a weight type
  BF16 = 30,
};

// The K-quant weight types (super-blocks of 256 along a row).
inline bool is_k_quant(TensorType t) {
  return t == TensorType::Q2_K || t == TensorType::Q3_K || t == TensorType::Q4_K ||
         t == TensorType::Q5_K || t == TensorType::Q6_K;
}
// The K-quants with Arm (NEON, sdot) int8 kernels; Q2_K and Q3_K run there on the portable
// Highway kernel (matvec.cpp's DotK). x86 has kernels for every K-quant (Q2_K and Q3_K: AVX2).
inline bool has_arm_k_kernel(TensorType t) {
  return t == TensorType::Q4_K || t == TensorType::Q5_K || t == TensorType::Q6_K;
}

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

// K-quants: super-blocks of 256 elements along a row, ggml's layouts byte for byte.
constexpr size_t kQK_K = 256;

// 16 sub-blocks of 16: x = d * scale_j * q - dmin * min_j, q in [0, 3]; scale_j and min_j are
// the low and high nibbles of scales[j]. Per 128 elements 32 bytes of qs: element 32 k + l
// (k < 4) in bits 2k of qs[l].
struct BlockQ2K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;     // fp16 scale of the scales
  uint16_t dmin;  // fp16 scale of the mins
};
static_assert(sizeof(BlockQ2K) == 84);

// 16 sub-blocks of 16: x = d * (scale_j - 32) * (q - 4), q in [0, 7]: the low 2 bits in qs as
// Q2_K's, the third bit of element e in bit e / 32 of hmask[e % 32]; the 6-bit scales packed in
// 12 bytes (low nibbles in bytes 0-7, high 2 bits in bytes 8-11).
struct BlockQ3K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ3K) == 110);

// 8 sub-blocks of 32: x = d * scale_j * q - dmin * min_j, q in [0, 15]; the 6-bit scales and
// mins are packed into 12 bytes (get_scale_min_k4).
struct BlockQ4K {
  uint16_t d;     // fp16 scale of the scales
  uint16_t dmin;  // fp16 scale of the mins
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];  // per 64 elements: 32 bytes, low nibbles the first 32, high the next
};
static_assert(sizeof(BlockQ4K) == 144);

// As Q4_K with a fifth bit per element (qh), q in [0, 31].
struct BlockQ5K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5K) == 176);

// 16 sub-blocks of 16: x = d * scale_j * (q - 32), q in [0, 63] split into 4 low bits (ql) and
// 2 high bits (qh); scales are int8.
struct BlockQ6K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6K) == 210);

// Activations for K-quant products: x = d * q, with the sums of each 16 q's.
struct BlockQ8K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8K) == 292);

}  // namespace dip
