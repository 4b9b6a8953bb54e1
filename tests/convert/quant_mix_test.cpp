#include "convert/quant_mix.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "test_models.h"

namespace dip {
namespace {

std::string blk(int layer, const char* what) {
  return "blk." + std::to_string(layer) + "." + what + ".weight";
}

MixModelShape shape(uint32_t n_layer, bool tied = false, uint32_t n_gqa = 1) {
  MixModelShape s;
  s.n_layer = n_layer;
  s.n_gqa = n_gqa;
  s.output_is_token_embd = tied;
  return s;
}

// Q4_K_M on 8 layers: llama.cpp gives attn_v and ffn_down of layers 0, 3, 6 and 7 Q6_K (the first
// and last eighth, and every third layer between), the output Q6_K, every other matrix Q4_K.
TEST(QuantMix, MediumRecipeIsLlamaCpps) {
  const QuantMix mix = parse_quant_mix("q4_k_m");
  EXPECT_EQ(mix.file_type, 15u);
  const std::set<int> more = {0, 3, 6, 7};
  for (int l = 0; l < 8; ++l) {
    const TensorType bumped = more.count(l) ? TensorType::Q6_K : TensorType::Q4_K;
    EXPECT_EQ(tensor_type_for(mix, blk(l, "attn_v"), 2, 256, shape(8)), bumped) << l;
    EXPECT_EQ(tensor_type_for(mix, blk(l, "ffn_down"), 2, 768, shape(8)), bumped) << l;
    for (const char* other : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"})
      EXPECT_EQ(tensor_type_for(mix, blk(l, other), 2, 256, shape(8)), TensorType::Q4_K) << other;
    EXPECT_EQ(tensor_type_for(mix, blk(l, "attn_norm"), 1, 256, shape(8)), TensorType::F32);
  }
  EXPECT_EQ(tensor_type_for(mix, "output.weight", 2, 256, shape(8)), TensorType::Q6_K);
  EXPECT_EQ(tensor_type_for(mix, "token_embd.weight", 2, 256, shape(8)), TensorType::Q4_K);
  // Tied embeddings: the token embedding is the output matrix too.
  EXPECT_EQ(tensor_type_for(mix, "token_embd.weight", 2, 256, shape(8, true)), TensorType::Q6_K);
  // 32 layers: the first 4, the last 4, and 6, 9, ..., 27.
  int bumped = 0;
  for (int l = 0; l < 32; ++l) {
    const bool expect = l < 4 || l >= 28 || (l >= 6 && (l - 6) % 3 == 0);
    bumped += expect;
    EXPECT_EQ(tensor_type_for(mix, blk(l, "ffn_down"), 2, 14336, shape(32)),
              expect ? TensorType::Q6_K : TensorType::Q4_K)
        << l;
  }
  EXPECT_EQ(bumped, 16);
}

// Q5_K_M bumps the same tensors from Q5_K; one-type mixes give every matrix their type.
TEST(QuantMix, OtherMixes) {
  const QuantMix q5 = parse_quant_mix("q5_k_m");
  EXPECT_EQ(q5.file_type, 17u);
  EXPECT_EQ(tensor_type_for(q5, blk(1, "ffn_down"), 2, 512, shape(8)), TensorType::Q5_K);
  EXPECT_EQ(tensor_type_for(q5, blk(0, "ffn_down"), 2, 512, shape(8)), TensorType::Q6_K);
  const QuantMix pure = parse_quant_mix("q4_k");
  EXPECT_FALSE(pure.mixed());
  EXPECT_EQ(tensor_type_for(pure, "output.weight", 2, 256, shape(8)), TensorType::Q4_K);
  EXPECT_EQ(tensor_type_for(pure, blk(0, "attn_v"), 2, 256, shape(8)), TensorType::Q4_K);
  EXPECT_EQ(tensor_type_for(parse_quant_mix("q8_0"), blk(0, "ffn_up"), 2, 64, shape(8)),
            TensorType::Q8_0);
}

// Q4_K_M / Q5_K_M give a fused q/k/v matrix (Phi-3's attn_qkv) one step more than the base.
TEST(QuantMix, MediumRecipesRaiseFusedQkv) {
  EXPECT_EQ(tensor_type_for(parse_quant_mix("q4_k_m"), blk(1, "attn_qkv"), 2, 256, shape(8)),
            TensorType::Q5_K);
  EXPECT_EQ(tensor_type_for(parse_quant_mix("q5_k_m"), blk(1, "attn_qkv"), 2, 256, shape(8)),
            TensorType::Q6_K);
}

// llama.cpp's Q3_K_M on 32 layers: attn_v of layers 0 and 1 and ffn_down of the first sixteenth
// Q5_K, the other attn_v and ffn_down, attn_output and a fused attn_qkv Q4_K, the rest Q3_K.
TEST(QuantMix, Q3KMRecipeIsLlamaCpps) {
  const QuantMix mix = parse_quant_mix("q3_k_m");
  EXPECT_EQ(mix.file_type, 12u);
  EXPECT_EQ(mix.base, TensorType::Q3_K);
  const auto type = [&](int l, const char* what) {
    return tensor_type_for(mix, blk(l, what), 2, 4096, shape(32));
  };
  for (int l = 0; l < 32; ++l) {
    const TensorType early = l < 2 ? TensorType::Q5_K : TensorType::Q4_K;
    EXPECT_EQ(type(l, "attn_v"), early) << l;
    EXPECT_EQ(type(l, "ffn_down"), early) << l;
    EXPECT_EQ(type(l, "attn_output"), TensorType::Q4_K) << l;
    EXPECT_EQ(type(l, "attn_qkv"), TensorType::Q4_K) << l;
    for (const char* other : {"attn_q", "attn_k", "ffn_gate", "ffn_up"})
      EXPECT_EQ(type(l, other), TensorType::Q3_K) << other;
  }
  EXPECT_EQ(tensor_type_for(mix, "output.weight", 2, 4096, shape(32)), TensorType::Q6_K);
  EXPECT_EQ(tensor_type_for(mix, "token_embd.weight", 2, 4096, shape(32)), TensorType::Q3_K);
}

// The other recipes on 32 layers (first eighth: layers 0-3).
TEST(QuantMix, SmallAndLargeRecipesAreLlamaCpps) {
  const auto type = [](const char* mix, int l, const char* what, uint32_t n_gqa = 1) {
    return tensor_type_for(parse_quant_mix(mix),
                           l < 0 ? std::string("output.weight") : blk(l, what), 2, 4096,
                           shape(32, false, n_gqa));
  };
  for (const char* mix : {"q2_k_s", "q3_k_s", "q3_k_l", "q4_k_s", "q5_k_s"})
    EXPECT_EQ(type(mix, -1, ""), TensorType::Q6_K) << mix;
  // Q3_K_S and Q5_K_S: only the output differs from the base.
  for (const char* what : {"attn_v", "ffn_down", "attn_output", "ffn_up"}) {
    EXPECT_EQ(type("q3_k_s", 0, what), TensorType::Q3_K) << what;
    EXPECT_EQ(type("q5_k_s", 0, what), TensorType::Q5_K) << what;
  }
  // Q3_K_L: attn_v, ffn_down and attn_output Q5_K everywhere, a fused attn_qkv Q4_K.
  for (const char* what : {"attn_v", "ffn_down", "attn_output"})
    EXPECT_EQ(type("q3_k_l", 20, what), TensorType::Q5_K) << what;
  EXPECT_EQ(type("q3_k_l", 20, "attn_qkv"), TensorType::Q4_K);
  EXPECT_EQ(type("q3_k_l", 20, "ffn_up"), TensorType::Q3_K);
  // Q4_K_S: attn_v of the first four layers and ffn_down of the first eighth Q5_K.
  for (int l : {0, 3}) {
    EXPECT_EQ(type("q4_k_s", l, "attn_v"), TensorType::Q5_K) << l;
    EXPECT_EQ(type("q4_k_s", l, "ffn_down"), TensorType::Q5_K) << l;
  }
  EXPECT_EQ(type("q4_k_s", 4, "attn_v"), TensorType::Q4_K);
  EXPECT_EQ(type("q4_k_s", 4, "ffn_down"), TensorType::Q4_K);
  // Q2_K_S: ffn_down of the first eighth Q4_K; attn_v Q4_K only with 4 or more query heads per
  // KV head.
  EXPECT_EQ(type("q2_k_s", 3, "ffn_down"), TensorType::Q4_K);
  EXPECT_EQ(type("q2_k_s", 4, "ffn_down"), TensorType::Q2_K);
  EXPECT_EQ(type("q2_k_s", 9, "attn_v", 4), TensorType::Q4_K);
  EXPECT_EQ(type("q2_k_s", 9, "attn_v", 2), TensorType::Q2_K);
  EXPECT_EQ(type("q2_k_s", 9, "ffn_up", 4), TensorType::Q2_K);
}

// Rows that do not fill a K-quant super-block: Q8_0 where they fill its blocks of 32, else F16
// (and F16 for any block type that does not fit).
TEST(QuantMix, RowsThatDoNotFillBlocksFallBack) {
  const QuantMix mix = parse_quant_mix("q4_k_m");
  EXPECT_EQ(tensor_type_for(mix, blk(1, "ffn_up"), 2, 96, shape(8)), TensorType::Q8_0);
  EXPECT_EQ(tensor_type_for(mix, "output.weight", 2, 160, shape(8)), TensorType::Q8_0);
  EXPECT_EQ(tensor_type_for(mix, blk(1, "ffn_up"), 2, 100, shape(8)), TensorType::F16);
  EXPECT_EQ(tensor_type_for(parse_quant_mix("q4_0"), blk(1, "ffn_up"), 2, 100, shape(8)),
            TensorType::F16);
}

TEST(QuantMix, UnknownNamesAreErrors) {
  expect_error([] { parse_quant_mix("q4_k_l"); }, "unknown tensor type 'q4_k_l'");
  expect_error([] { parse_quant_mix(""); }, "q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m");
}

}  // namespace
}  // namespace dip
