// Which type each tensor of a converted model gets: one type for every matrix (`--type q8_0`,
// `q4_k`, ...) or one of llama.cpp's mixed K-quant recipes (`q4_k_m`, `q5_k_m`), whose choices
// (which attn_v and ffn_down layers and the output get Q6_K) follow llama-quant.cpp's rules for
// dense Llama-family models, so that a file written here has the layout users know.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "ops/tensor_types.h"

namespace dip {

struct QuantMix {
  std::string name;        // as given: "q4_k_m", "q8_0", ...
  TensorType base;         // the type of most matrices
  bool medium = false;     // llama.cpp's *_K_M: Q6_K for the output and some attn_v/ffn_down
  uint32_t file_type = 0;  // general.file_type (llama.cpp's LLAMA_FTYPE_*)
};

// "q4_k_m", "q5_k_m" or a tensor type name (f32, f16, bf16, q8_0, q4_0, q2_k ... q6_k);
// anything else is an error naming the accepted names.
QuantMix parse_quant_mix(const std::string& name);

// The type tensor `name` (n_dims dimensions, rows of `cols` elements) gets in a model of
// n_layer layers; `output_is_token_embd`: the model has no output.weight (tied embeddings),
// so token_embd.weight is its output matrix too. Vectors (norms, biases) stay F32; a matrix
// whose rows do not fill its type's blocks falls back to Q8_0 (K-quants) or F16 (others).
TensorType tensor_type_for(const QuantMix& mix, const std::string& name, size_t n_dims, size_t cols,
                           uint32_t n_layer, bool output_is_token_embd);

}  // namespace dip
