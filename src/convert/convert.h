// `dip convert`: a GGUF file or Hugging Face folder in, a GGUF file of the chosen type out, with
// the tokenizer metadata llama.cpp reads.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ops/tensor_types.h"

namespace dip {

class Model;
class GgufWriter;
struct QuantMix;
struct GgufTensorInfo;
struct HParams;

// The {arch}.* hyper-parameter keys of a GGUF file, as llama.cpp reads them.
void write_hparams(GgufWriter& w, const HParams& hp);
// All elements of a tensor as floats (row by row, any supported type).
void dequantize_tensor(const GgufTensorInfo& t, std::vector<float>& out);

// Adds the updates of the adapters the model was given for tensor `name` to its weights w
// (rows x cols floats in the model's own row order): W + scale * B A.
void merge_lora(const Model& m, const std::string& name, std::vector<float>& w);

// Each tensor in the type `mix` chooses for it (quant_mix.h). Adapters given to the model
// (Model::add_lora) are merged into the weights written.
// progress(done, total, tensor name) is called after each tensor.
void convert_to_gguf(const Model& model, const std::string& out, const QuantMix& mix,
                     const std::function<void(size_t, size_t, const std::string&)>& progress);

}  // namespace dip

namespace dip {
// Writes a Hugging Face folder (config.json, safetensors shards of at most shard_bytes with an
// index when there are several, tokenizer.json) from a model: weights as F32, F16 or BF16.
void export_hf(const Model& model, const std::string& dir, TensorType dtype, uint64_t shard_bytes);
}  // namespace dip
