#include "convert/quant_mix.h"

#include <array>
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

TensorRole role_of(const std::string& name, bool output_is_token_embd) {
  if (name == "output.weight" || (output_is_token_embd && name == "token_embd.weight"))
    return TensorRole::kOutput;
  if (name.ends_with(".attn_v.weight")) return TensorRole::kAttnV;
  if (name.ends_with(".attn_qkv.weight")) return TensorRole::kAttnQkv;
  if (name.ends_with(".attn_output.weight")) return TensorRole::kAttnOutput;
  if (name.ends_with(".ffn_down.weight")) return TensorRole::kFfnDown;
  return TensorRole::kOther;
}

// The recipes, one function each. Every one of them gives the output matrix Q6_K.
using R = TensorRole;
using T = TensorType;

T q2_k_s(const TensorSite& s, T base) {
  if (s.role == R::kOutput) return T::Q6_K;
  if (s.role == R::kAttnV && s.n_gqa >= 4) return T::Q4_K;
  if (s.role == R::kFfnDown && s.layer < s.n_layer / 8) return T::Q4_K;
  return base;
}

T small(const TensorSite& s, T base) {  // Q3_K_S, Q5_K_S: only the output changes
  return s.role == R::kOutput ? T::Q6_K : base;
}

T q3_k_m(const TensorSite& s, T base) {
  switch (s.role) {
    case R::kOutput:
      return T::Q6_K;
    case R::kAttnV:
      return s.layer < 2 ? T::Q5_K : T::Q4_K;
    case R::kFfnDown:
      return s.layer < s.n_layer / 16 ? T::Q5_K : T::Q4_K;
    case R::kAttnOutput:
    case R::kAttnQkv:
      return T::Q4_K;
    case R::kOther:
      break;
  }
  return base;
}

T q3_k_l(const TensorSite& s, T base) {
  switch (s.role) {
    case R::kOutput:
      return T::Q6_K;
    case R::kAttnV:
    case R::kFfnDown:
    case R::kAttnOutput:
      return T::Q5_K;
    case R::kAttnQkv:
      return T::Q4_K;
    case R::kOther:
      break;
  }
  return base;
}

T q4_k_s(const TensorSite& s, T base) {
  if (s.role == R::kOutput) return T::Q6_K;
  if (s.role == R::kAttnV && s.layer < 4) return T::Q5_K;
  if (s.role == R::kFfnDown && s.layer < s.n_layer / 8) return T::Q5_K;
  return base;
}

T medium(const TensorSite& s, T base) {  // Q4_K_M, Q5_K_M
  if (s.role == R::kOutput) return T::Q6_K;
  if ((s.role == R::kAttnV || s.role == R::kFfnDown) && use_more_bits(s.layer, s.n_layer))
    return T::Q6_K;
  if (s.role == R::kAttnQkv) return base == T::Q4_K ? T::Q5_K : T::Q6_K;
  return base;
}

struct Recipe {
  const char* name;
  TensorType base;
  MixRule rule;
  uint32_t file_type;  // LLAMA_FTYPE_MOSTLY_*
};
constexpr std::array kRecipes = {
    Recipe{"q2_k_s", T::Q2_K, q2_k_s, 21}, Recipe{"q3_k_s", T::Q3_K, small, 11},
    Recipe{"q3_k_m", T::Q3_K, q3_k_m, 12}, Recipe{"q3_k_l", T::Q3_K, q3_k_l, 13},
    Recipe{"q4_k_s", T::Q4_K, q4_k_s, 14}, Recipe{"q4_k_m", T::Q4_K, medium, 15},
    Recipe{"q5_k_s", T::Q5_K, small, 16},  Recipe{"q5_k_m", T::Q5_K, medium, 17},
};

}  // namespace

QuantMix parse_quant_mix(const std::string& name) {
  for (const Recipe& r : kRecipes)
    if (name == r.name) return {name, r.base, r.rule, r.file_type};
  TensorType t;
  try {
    t = parse_tensor_type(name);
  } catch (const Error&) {
    fail(
        "unknown tensor type '{}' (f32, f16, bf16, q8_0, q4_0, q2_k, q3_k, q4_k, q5_k, q6_k, or "
        "llama.cpp's mixes q2_k_s, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m)",
        name);
  }
  return {name, t, nullptr, file_type_of(t)};
}

TensorType tensor_type_for(const QuantMix& mix, const std::string& name, size_t n_dims, size_t cols,
                           const MixModelShape& shape) {
  if (n_dims == 1 || name == "rope_freqs.weight") return TensorType::F32;  // norms, biases
  TensorType t = mix.base;
  if (mix.rule) {
    TensorSite site;
    site.role = role_of(name, shape.output_is_token_embd);
    site.layer = layer_of(name);
    site.n_layer = int(shape.n_layer);
    site.n_gqa = shape.n_gqa;
    t = mix.rule(site, mix.base);
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
