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

// Q4_K_M on 8 layers: llama.cpp gives attn_v and ffn_down of layers 0, 3, 6 and 7 Q6_K (the first
// and last eighth, and every third layer between), the output Q6_K, every other matrix Q4_K.
TEST(QuantMix, MediumRecipeIsLlamaCpps) {
  const QuantMix mix = parse_quant_mix("q4_k_m");
  EXPECT_EQ(mix.file_type, 15u);
  const std::set<int> more = {0, 3, 6, 7};
  for (int l = 0; l < 8; ++l) {
    const TensorType bumped = more.count(l) ? TensorType::Q6_K : TensorType::Q4_K;
    EXPECT_EQ(tensor_type_for(mix, blk(l, "attn_v"), 2, 256, 8, false), bumped) << l;
    EXPECT_EQ(tensor_type_for(mix, blk(l, "ffn_down"), 2, 768, 8, false), bumped) << l;
    for (const char* other : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"})
      EXPECT_EQ(tensor_type_for(mix, blk(l, other), 2, 256, 8, false), TensorType::Q4_K) << other;
    EXPECT_EQ(tensor_type_for(mix, blk(l, "attn_norm"), 1, 256, 8, false), TensorType::F32);
  }
  EXPECT_EQ(tensor_type_for(mix, "output.weight", 2, 256, 8, false), TensorType::Q6_K);
  EXPECT_EQ(tensor_type_for(mix, "token_embd.weight", 2, 256, 8, false), TensorType::Q4_K);
  // Tied embeddings: the token embedding is the output matrix too.
  EXPECT_EQ(tensor_type_for(mix, "token_embd.weight", 2, 256, 8, true), TensorType::Q6_K);
  // 32 layers: the first 4, the last 4, and 6, 9, ..., 27.
  int bumped = 0;
  for (int l = 0; l < 32; ++l) {
    const bool expect = l < 4 || l >= 28 || (l >= 6 && (l - 6) % 3 == 0);
    bumped += expect;
    EXPECT_EQ(tensor_type_for(mix, blk(l, "ffn_down"), 2, 14336, 32, false),
              expect ? TensorType::Q6_K : TensorType::Q4_K)
        << l;
  }
  EXPECT_EQ(bumped, 16);
}

// Q5_K_M bumps the same tensors from Q5_K; one-type mixes give every matrix their type.
TEST(QuantMix, OtherMixes) {
  const QuantMix q5 = parse_quant_mix("q5_k_m");
  EXPECT_EQ(q5.file_type, 17u);
  EXPECT_EQ(tensor_type_for(q5, blk(1, "ffn_down"), 2, 512, 8, false), TensorType::Q5_K);
  EXPECT_EQ(tensor_type_for(q5, blk(0, "ffn_down"), 2, 512, 8, false), TensorType::Q6_K);
  const QuantMix pure = parse_quant_mix("q4_k");
  EXPECT_FALSE(pure.medium);
  EXPECT_EQ(tensor_type_for(pure, "output.weight", 2, 256, 8, false), TensorType::Q4_K);
  EXPECT_EQ(tensor_type_for(pure, blk(0, "attn_v"), 2, 256, 8, false), TensorType::Q4_K);
  EXPECT_EQ(tensor_type_for(parse_quant_mix("q8_0"), blk(0, "ffn_up"), 2, 64, 8, false),
            TensorType::Q8_0);
}

// Rows that do not fill a K-quant super-block: Q8_0 where they fill its blocks of 32, else F16
// (and F16 for any block type that does not fit).
TEST(QuantMix, RowsThatDoNotFillBlocksFallBack) {
  const QuantMix mix = parse_quant_mix("q4_k_m");
  EXPECT_EQ(tensor_type_for(mix, blk(1, "ffn_up"), 2, 96, 8, false), TensorType::Q8_0);
  EXPECT_EQ(tensor_type_for(mix, "output.weight", 2, 160, 8, false), TensorType::Q8_0);
  EXPECT_EQ(tensor_type_for(mix, blk(1, "ffn_up"), 2, 100, 8, false), TensorType::F16);
  EXPECT_EQ(tensor_type_for(parse_quant_mix("q4_0"), blk(1, "ffn_up"), 2, 100, 8, false),
            TensorType::F16);
}

TEST(QuantMix, UnknownNamesAreErrors) {
  expect_error([] { parse_quant_mix("q4_k_l"); }, "unknown tensor type 'q4_k_l'");
  expect_error([] { parse_quant_mix(""); }, "q4_k_m, q5_k_m");
}

}  // namespace
}  // namespace dip
