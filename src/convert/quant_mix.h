// Which type each tensor of a converted model gets: one type for every matrix (`--type q8_0`,
// `q4_k`, ...) or one of llama.cpp's mixed K-quant recipes (`q2_k_s`, `q3_k_s|m|l`, `q4_k_s|m`,
// `q5_k_s|m`), whose choices (which tensors get more bits, by role and layer) follow
// llama-quant.cpp's rules for dense models, so that a file written here has the layout users know.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "ops/tensor_types.h"

namespace dip {

// What a recipe knows of a matrix: its role, its layer and the model's shape.
enum class TensorRole { kOutput, kAttnV, kAttnQkv, kAttnOutput, kFfnDown, kOther };
struct TensorSite {
  TensorRole role = TensorRole::kOther;
  int layer = -1;  // -1 outside the blocks (token embedding, output)
  int n_layer = 0;
  uint32_t n_gqa = 1;  // query heads per KV head
};

// One recipe: the type of a matrix at `site` in a file whose most matrices are `base`.
using MixRule = TensorType (*)(const TensorSite& site, TensorType base);

struct QuantMix {
  std::string name;        // as given: "q4_k_m", "q8_0", ...
  TensorType base;         // the type of most matrices
  MixRule rule = nullptr;  // llama.cpp's recipe; none: every matrix in `base`
  uint32_t file_type = 0;  // general.file_type (llama.cpp's LLAMA_FTYPE_*)
  bool mixed() const { return rule != nullptr; }
};

// A recipe name or a tensor type name (f32, f16, bf16, q8_0, q4_0, q2_k ... q6_k); anything
// else is an error naming the accepted names.
QuantMix parse_quant_mix(const std::string& name);

// The shape a recipe may consult. `output_is_token_embd`: the model has no output.weight (tied
// embeddings), so token_embd.weight is its output matrix too.
struct MixModelShape {
  uint32_t n_layer = 0;
  uint32_t n_gqa = 1;
  bool output_is_token_embd = false;
};

// The type tensor `name` (n_dims dimensions, rows of `cols` elements) gets. Vectors (norms,
// biases) stay F32; a matrix whose rows do not fill its type's blocks falls back to Q8_0
// (K-quants) or F16 (others).
TensorType tensor_type_for(const QuantMix& mix, const std::string& name, size_t n_dims, size_t cols,
                           const MixModelShape& shape);

}  // namespace dip
