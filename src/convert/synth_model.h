// Writes GGUF models with random weights for tests, benchmarks and the demo: any supported
// architecture, tensor type and shape, with a tokenizer copied from a GGUF vocabulary file or
// a small byte-level BPE vocabulary trained on a built-in public-domain text.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "model/hparams.h"
#include "ops/tensor_types.h"

namespace dip {

struct SynthSpec {
  Arch arch = Arch::kLlama;
  TensorType type = TensorType::F32;
  uint32_t n_embd = 128, n_layer = 2, n_ff = 384, n_head = 4, n_head_kv = 2, n_ctx = 2048;
  bool tied = false;
  bool rope_freqs = false;  // Llama-3 style frequency factors
  uint64_t seed = 1;
  std::string vocab_from;     // GGUF whose tokenizer.* metadata is copied; empty = built-in
  std::string pre = "gpt-2";  // pre-tokenizer of the built-in vocabulary
  uint32_t n_merges = 400;    // merges of the built-in vocabulary
  float logit_scale = 3.0f;   // std of the output logits (peaky distributions)
  float rope_base = 0.0f;     // 0: 1e4 for llama, 1e6 for the others
  // Weights from a sum of four uniforms (near-normal, unit variance, |x| < 3.5) instead of
  // Box-Muller: several times faster, for benchmark models of tens of GB. Other numbers than
  // the default, so files differ.
  bool fast_weights = false;
};

// progress(done, total, tensor name) after each tensor is written, where given.
void write_synth_model(
    const SynthSpec& spec, const std::string& path,
    const std::function<void(size_t, size_t, const std::string&)>& progress = {});

TensorType parse_tensor_type(const std::string& name);  // f32 ... q4_0, q2_k ... q6_k
Arch parse_arch(const std::string& name);

}  // namespace dip
