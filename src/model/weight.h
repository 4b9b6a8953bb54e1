// A 2-D weight in ggml layout, pointing into the mapped model file, with the low-rank adapters
// applied to it (none unless the model was given some).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/tensor_types.h"

namespace dip {

struct LoraTensor;

// `rows` outputs, each a contiguous row of `cols` inputs.
struct Weight {
  std::string name;
  TensorType type = TensorType::F32;
  const uint8_t* data = nullptr;
  size_t rows = 0, cols = 0;
  size_t bytes() const { return rows * row_bytes(type, cols); }
  const uint8_t* row(size_t r) const { return data + r * row_bytes(type, cols); }
  // Adapters whose update is added to this weight's product, in the order they were given.
  std::vector<const LoraTensor*> lora;
};

}  // namespace dip
