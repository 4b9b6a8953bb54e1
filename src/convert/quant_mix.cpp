#include "convert/quant_mix.h"

#include <cstdio>

#include "convert/synth_model.h"
#include "util/error.h"

namespace dip {

namespace {

uint32_t file_type_of(TensorType t) {  // llama.cpp's LLAMA_FTYPE_* for one type throughout
  switch (t) {
    case TensorType::F32:
      return 0;
    case TensorType::F16:
      return 1;
    case TensorType::Q4_0:
      return 2;
    case TensorType::Q8_0:
      return 7;
    case TensorType::BF16:
      return 32;
    case TensorType::Q2_K:  // every matrix in the one type: llama.cpp's Q2_K and *_K_S file types
      return 10;
    case TensorType::Q3_K:
      return 11;
    case TensorType::Q4_K:
      return 14;
    case TensorType::Q5_K:
      return 16;
    case TensorType::Q6_K:
      return 18;
    case TensorType::Q8_K:
      break;
  }
  return 0;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// The layer of "blk.N.<rest>", or -1.
int layer_of(const std::string& name) {
  int layer = -1, used = 0;
  if (std::sscanf(name.c_str(), "blk.%d.%n", &layer, &used) == 1 && used > 0) return layer;
  return -1;
}

}  // namespace

QuantMix parse_quant_mix(const std::string& name) {
  if (name == "q4_k_m") return {name, TensorType::Q4_K, true, 15};
  if (name == "q5_k_m") return {name, TensorType::Q5_K, true, 17};
  TensorType t;
  try {
    t = parse_tensor_type(name);
  } catch (const Error&) {
    fail(
        "unknown tensor type '{}' (f32, f16, bf16, q8_0, q4_0, q2_k, q3_k, q4_k, q5_k, q6_k, "
        "q4_k_m, "
        "q5_k_m)",
        name);
  }
  return {name, t, false, file_type_of(t)};
}

TensorType tensor_type_for(const QuantMix& mix, const std::string& name, size_t n_dims, size_t cols,
                           uint32_t n_layer, bool output_is_token_embd) {
  if (n_dims == 1 || name == "rope_freqs.weight") return TensorType::F32;  // norms, biases
  TensorType t = mix.base;
  if (mix.medium) {
    const int layer = layer_of(name), n = int(n_layer);
    const bool output =
        name == "output.weight" || (output_is_token_embd && name == "token_embd.weight");
    if (output) {
      t = TensorType::Q6_K;
    } else if (layer >= 0 &&
               (name.ends_with(".attn_v.weight") || name.ends_with(".ffn_down.weight")) &&
               use_more_bits(layer, n)) {
      t = TensorType::Q6_K;
    }
  }
  if (block_elems(t) > 1 && cols % block_elems(t) != 0) {
    // llama.cpp falls back to Q5_0/Q5_1/Q8_0 for rows that do not fill K-quant super-blocks;
    // Q5_0 and Q5_1 are not among dip's types, so every K-quant falls back to Q8_0 here.
    t = is_k_quant(t) && cols % block_elems(TensorType::Q8_0) == 0 ? TensorType::Q8_0
                                                                   : TensorType::F16;
  }
  return t;
}

}  // namespace dip
