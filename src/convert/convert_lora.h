// `dip convert-lora`: an adapter (PEFT folder or GGUF) out as a llama.cpp GGUF LoRA adapter for
// the base model it was checked against.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ops/tensor_types.h"

namespace dip {

class Model;
class LoraAdapter;

// Writes `a` (loaded against `base`) as a GGUF adapter: general.type = adapter,
// adapter.type = lora, adapter.lora.alpha, tensors <base tensor>.lora_a [n_in, rank] and
// .lora_b [rank, n_out] of `type` (f32, f16 or bf16), q/k rows in GGUF order. The write is atomic.
void write_lora_gguf(const Model& base, const LoraAdapter& a, const std::string& out,
                     TensorType type);

}  // namespace dip

namespace dip {

// A random adapter for tests and demos: every weight whose name ends in one of `targets`
// (".ffn_up.weight", ...) gets A ~ N(0, 1/n_in) and B ~ N(0, b_std^2).
struct SynthLoraSpec {
  uint32_t rank = 8;
  float alpha = 16.0f;
  float b_std = 0.02f;
  uint64_t seed = 1;
  TensorType type = TensorType::F32;
  std::vector<std::string> targets = {"attn_q",      "attn_k",   "attn_v", "attn_qkv",
                                      "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
};
void write_synth_lora(const Model& base, const SynthLoraSpec& spec, const std::string& out);

}  // namespace dip
