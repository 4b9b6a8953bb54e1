// Writes GGUF models with random weights for tests, benchmarks and the demo: any supported
// architecture, tensor type and shape, with a tokenizer copied from a GGUF vocabulary file or
// a small byte-level BPE vocabulary trained on a built-in public-domain text.
#pragma once
#include <cstdint>
#include <string>

#include "model/hparams.h"
#include "ops/tensor_types.h"

namespace dip {

struct SynthSpec {
  Arch arch = Arch::kLlama;
  TensorType type = TensorType::F32;
  uint32_t n_embd = 128, n_layer = 2, n_ff = 384, n_head = 4, n_head_kv = 2, n_ctx = 2048;
  bool tied = false;
  bool rope_freqs = false;      // Llama-3 style frequency factors
  uint64_t seed = 1;
  std::string vocab_from;       // GGUF whose tokenizer.* metadata is copied; empty = built-in
  std::string pre = "gpt-2";    // pre-tokenizer of the built-in vocabulary
  uint32_t n_merges = 400;      // merges of the built-in vocabulary
  float logit_scale = 3.0f;     // std of the output logits (peaky distributions)
  float rope_base = 0.0f;       // 0: 1e4 for llama, 1e6 for the others
};

void write_synth_model(const SynthSpec& spec, const std::string& path);

TensorType parse_tensor_type(const std::string& name);  // f32, f16, bf16, q8_0, q4_0
Arch parse_arch(const std::string& name);

}  // namespace dip
