// Hugging Face model folders: config.json, model.safetensors or sharded safetensors with
// model.safetensors.index.json, tokenizer.json. Tensors are mapped in place and presented under
// llama.cpp's GGUF names with ggml dimension order, so the model loader treats both alike.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/hparams.h"
#include "tokenizer/vocab.h"

namespace dip {

struct HfModel {
  std::string dir;
  std::string architecture;  // e.g. "LlamaForCausalLM"
  HParams hp;                // n_vocab from config.json; Llama keeps HF's rotate-half order (NeoX)
  Vocab vocab;
  std::vector<float> rope_freqs;  // Llama-3 frequency factors computed from rope_scaling
  std::vector<std::unique_ptr<SafetensorsFile>> shards;
  std::vector<GgufTensorInfo> tensors;  // GGUF names, ggml dims, pointers into the shards
  // Llama q/k rows are in rotate-half order here; llama.cpp's GGUF wants them interleaved.
  bool llama_qk_rotate_half = false;
};

bool is_hf_model_dir(const std::string& path);
std::unique_ptr<HfModel> load_hf_model(const std::string& dir, bool vocab_only = false);

// The GGUF name of a Hugging Face tensor name ("model.layers.0.mlp.up_proj.weight" ->
// "blk.0.ffn_up.weight"); empty when the name is not one the loader knows.
std::string gguf_tensor_name(const std::string& hf_name);

// Parses config.json text into hyper-parameters (name used in messages).
HParams parse_hf_config(const std::string& text, const std::string& name, std::string& architecture,
                        std::vector<float>& rope_freqs);

}  // namespace dip
