// Low-rank adapters (LoRA) on a model's projections: y = W x + scale * B (A x). Read from
// llama.cpp's GGUF adapter files (general.type = adapter, adapter.type = lora, tensors
// `<base tensor>.lora_a` [n_in, rank] and `.lora_b` [rank, n_out] in ggml order) or from PEFT
// folders (adapter_config.json + adapter_model.safetensors). The scale is llama.cpp's:
// user scale * alpha / rank (the user scale alone when alpha is 0), which is PEFT's
// lora_alpha / r as well.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/weight.h"

namespace dip {

class Model;

// One adapter file and the factor its update is multiplied by (--lora-scaled FILE SCALE).
struct LoraSpec {
  std::string path;
  float scale = 1.0f;
};

// The update of one base weight: A is rank rows of n_in inputs, B n_out rows of rank inputs,
// both as Weight views in the file's own types (the dense path multiplies them as llama.cpp
// does) and as floats (the column-sparse path multiplies only the kept columns of A).
struct LoraTensor {
  std::string base;  // the base tensor's GGUF name
  Weight a, b;
  std::vector<float> a_f32, b_f32;
  uint32_t rank = 0;
  float scale = 0;  // already includes alpha / rank and the user's scale
  uint64_t bytes() const { return a.bytes() + b.bytes(); }
};

class LoraAdapter {
 public:
  // Reads a GGUF adapter or a PEFT folder and checks every tensor against `base` (names, shapes,
  // ranks); fails with the file and the tensor on any mismatch.
  static std::unique_ptr<LoraAdapter> load(const LoraSpec& spec, const Model& base);

  const std::string& path() const { return path_; }
  float alpha() const { return alpha_; }
  float user_scale() const { return user_scale_; }
  const std::vector<LoraTensor>& tensors() const { return tensors_; }
  // Bytes the adapter's tensors take in DRAM (in the file's types; the float copies besides).
  uint64_t bytes() const;

 private:
  void load_gguf(const Model& base);
  void load_peft(const Model& base);
  // Re-orders B's q/k output rows between Hugging Face and GGUF order (rope_rows.h) into
  // a float copy this adapter owns.
  void reorder_rows(GgufTensorInfo& b, uint32_t head_dim, bool to_gguf);
  void add(const Model& base, const std::string& base_name, const GgufTensorInfo& a,
           const GgufTensorInfo& b);

  std::string path_;
  float alpha_ = 0, user_scale_ = 1;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsFile> safetensors_;
  std::vector<std::vector<float>> owned_;  // PEFT q/k B rows re-ordered for a GGUF base
  std::vector<LoraTensor> tensors_;
};

// The column-sparse update of the pruned MLP: y += scale * B (A[:, idx] xs), where xs holds the
// n kept inputs x[idx[i]] (idx null: all inputs, n = A's columns). tmp: scratch.
void lora_add(const LoraTensor& t, const int32_t* idx, const float* xs, size_t n, float* y,
              std::vector<float>& tmp);
// tmp = A x over all inputs (rank floats), for lora_row.
void lora_project_a(const LoraTensor& t, const float* x, std::vector<float>& tmp);
// The update of output row j from tmp = A x: scale * B[j, :] tmp.
float lora_row(const LoraTensor& t, const std::vector<float>& tmp, size_t j);

// Parses a --lora-scaled scale ("0.5"); fails naming the file when it is not a finite number.
float parse_lora_scale(const std::string& file, const std::string& text);

// True for a folder that holds a PEFT adapter (adapter_config.json).
bool is_peft_adapter_dir(const std::string& path);

}  // namespace dip
