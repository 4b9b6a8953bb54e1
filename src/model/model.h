// A loaded model: hyper-parameters, vocabulary and weights that point into the mapped GGUF.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/hf_model.h"
#include "model/hparams.h"
#include "model/lora.h"
#include "model/repacked_weights.h"
#include "model/weight.h"
#include "ops/tensor_types.h"
#include "tokenizer/vocab.h"

namespace dip {

struct Layer {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> bq, bk, bv;      // qwen2 biases (empty when absent)
  std::vector<float> q_norm, k_norm;  // qwen3 per-head norms (empty when absent)
  Weight wq, wk, wv, wqkv, wo;        // wqkv: phi3's fused projection (then wq/wk/wv unset)
  Weight ffn_gate, ffn_up, ffn_down;  // phi3: ffn_up holds gate and up (2 * n_ff rows)
  bool fused_qkv() const { return wqkv.data != nullptr; }
  bool fused_gate_up() const { return ffn_gate.data == nullptr; }
};

class Model {
 public:
  // Loads a GGUF file or a Hugging Face model folder; with vocab_only only the tokenizer is
  // read (vocabulary-only GGUF files work then).
  static std::unique_ptr<Model> load(const std::string& path, bool vocab_only = false);

  const std::string& path() const { return path_; }
  // The GGUF file, or null for a Hugging Face folder.
  const GgufFile* gguf() const { return gguf_.get(); }
  const HfModel* hf() const { return hf_.get(); }
  // Every tensor of the source under its GGUF name (ggml dimension order).
  const std::vector<GgufTensorInfo>& tensors() const { return *tensors_; }
  const char* format() const { return gguf_ ? "GGUF" : "Hugging Face safetensors"; }
  const HParams& hparams() const { return hp_; }
  const Vocab& vocab() const { return vocab_; }
  bool vocab_only() const { return vocab_only_; }

  Weight tok_embd, output;
  std::vector<float> output_norm;
  std::vector<float> rope_freqs;  // Llama-3 frequency factors (empty when absent)
  std::vector<Layer> layers;

  // Applies a low-rank adapter to every weight it names (adapters add up, in the order given);
  // fails with the file and the tensor when it does not fit this model.
  void add_lora(const LoraSpec& spec);
  const std::vector<std::unique_ptr<LoraAdapter>>& adapters() const { return adapters_; }
  // Bytes of all adapters' tensors (they stay in DRAM, also when the MLP is on flash).
  uint64_t adapter_bytes() const;
  // The projection weight of that GGUF name (token embeddings excluded), or null.
  Weight* find_weight(const std::string& name);
  const Weight* find_weight(const std::string& name) const;

  // Bytes of weights one generated token reads (all matrices + norms; one embedding row).
  uint64_t bytes_per_token() const;
  uint64_t mlp_bytes() const;
  uint64_t total_weight_bytes() const;

  // w in the layout of the CPU's fastest dense kernel, copied on first use (repacked_weights.h),
  // or null where w's own bytes are what that kernel reads.
  const uint8_t* repacked(const Weight& w) const;

 private:
  void load_weights();
  std::string path_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<HfModel> hf_;
  const std::vector<GgufTensorInfo>* tensors_ = nullptr;
  HParams hp_;
  Vocab vocab_;
  bool vocab_only_ = false;
  std::vector<std::unique_ptr<LoraAdapter>> adapters_;
  std::unique_ptr<RepackedWeights> repacked_;  // made with the weights
};

}  // namespace dip
