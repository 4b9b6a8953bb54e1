#include "ops/tensor_types.h"

#include <fmt/format.h>

#include "util/error.h"

namespace dip {

std::string ggml_type_name(uint32_t id) {
  static const char* const kNames[] = {
      "F32",   "F16",        "Q4_0",       "Q4_1",       "Q4_2",     "Q4_3",     "Q5_0",
      "Q5_1",  "Q8_0",       "Q8_1",       "Q2_K",       "Q3_K",     "Q4_K",     "Q5_K",
      "Q6_K",  "Q8_K",       "IQ2_XXS",    "IQ2_XS",     "IQ3_XXS",  "IQ1_S",    "IQ4_NL",
      "IQ3_S", "IQ2_S",      "IQ4_XS",     "I8",         "I16",      "I32",      "I64",
      "F64",   "IQ1_M",      "BF16",       "Q4_0_4_4",   "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",
      "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
  if (id < sizeof(kNames) / sizeof(kNames[0])) return kNames[id];
  return fmt::format("type{}", id);
}

bool is_supported_type(uint32_t id) {
  switch (TensorType(id)) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return true;
    case TensorType::Q8_K:
      return false;
  }
  return false;
}

size_t block_elems(TensorType t) {
  switch (t) {
    case TensorType::Q8_0:
      return kQK8_0;
    case TensorType::Q4_0:
      return kQK4_0;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::Q8_K:
      return kQK_K;
    default:
      return 1;
  }
}

size_t block_bytes(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return 4;
    case TensorType::F16:
      return 2;
    case TensorType::BF16:
      return 2;
    case TensorType::Q8_0:
      return sizeof(BlockQ8_0);
    case TensorType::Q4_0:
      return sizeof(BlockQ4_0);
    case TensorType::Q2_K:
      return sizeof(BlockQ2K);
    case TensorType::Q3_K:
      return sizeof(BlockQ3K);
    case TensorType::Q4_K:
      return sizeof(BlockQ4K);
    case TensorType::Q5_K:
      return sizeof(BlockQ5K);
    case TensorType::Q6_K:
      return sizeof(BlockQ6K);
    case TensorType::Q8_K:
      return sizeof(BlockQ8K);
  }
  fail("internal: block_bytes of unsupported type {}", uint32_t(t));
}

size_t row_bytes(TensorType t, size_t n) { return n / block_elems(t) * block_bytes(t); }

}  // namespace dip
