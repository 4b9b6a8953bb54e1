#include "convert/convert_lora.h"

#include <cmath>
#include <filesystem>
#include <random>

#include "io/gguf_writer.h"
#include "model/model.h"
#include "model/rope_rows.h"
#include "ops/quant.h"
#include "util/error.h"

namespace dip {

namespace {

// The metadata llama.cpp reads from an adapter file.
void write_adapter_header(GgufWriter& w, const HParams& hp, const std::string& name, float alpha) {
  w.set_string("general.architecture", hp.arch_name);
  w.set_string("general.type", "adapter");
  w.set_string("general.name", name);
  w.set_u32("general.alignment", 32);
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", alpha);
}

// The adapter tensor types: llama.cpp applies any of them (B A x as two products).
bool is_adapter_type(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16 ||
         t == TensorType::Q8_0;
}

// rows x cols floats as a tensor of `type`.
void add_float_tensor(GgufWriter& w, const std::string& name, TensorType type, const float* f,
                      size_t cols, size_t rows) {
  if (cols % block_elems(type) != 0)
    fail(
        "{}: {} stores rows of a multiple of {} values; this tensor's rows have {} (for lora_b: "
        "the rank)",
        name, ggml_type_name(uint32_t(type)), block_elems(type), cols);
  const size_t rb = row_bytes(type, cols);
  std::vector<uint8_t> bytes(rows * rb);
  for (size_t r = 0; r < rows; ++r) quantize_row(type, f + r * cols, bytes.data() + r * rb, cols);
  w.add_tensor(name, type, {cols, rows}, bytes.data(), bytes.size());
}

}  // namespace

void write_lora_gguf(const Model& base, const LoraAdapter& a, const std::string& out,
                     TensorType type) {
  if (!is_adapter_type(type)) fail("convert-lora: --type must be f32, f16, bf16 or q8_0");
  const HParams& hp = base.hparams();
  GgufWriter w;
  write_adapter_header(w, hp, std::filesystem::path(a.path()).filename().string(), a.alpha());
  // A Hugging Face base keeps Llama's q/k rows in rotate-half order; the file wants GGUF order.
  const bool interleave = base.hf() && base.hf()->llama_qk_rotate_half;
  for (const LoraTensor& t : a.tensors()) {
    std::vector<float> b = t.b_f32;
    if (interleave && (t.base.ends_with(".attn_q.weight") || t.base.ends_with(".attn_k.weight")))
      interleave_rope_rows(b, t.rank, t.b.rows, hp.head_dim);
    add_float_tensor(w, t.base + ".lora_a", type, t.a_f32.data(), t.a.cols, t.rank);
    add_float_tensor(w, t.base + ".lora_b", type, b.data(), t.rank, t.b.rows);
  }
  w.write(out);
}

void write_synth_lora(const Model& base, const SynthLoraSpec& spec, const std::string& out) {
  if (spec.rank == 0) fail("make-test-lora: the rank must be positive");
  if (!is_adapter_type(spec.type)) fail("make-test-lora: --type must be f32, f16, bf16 or q8_0");
  const HParams& hp = base.hparams();
  GgufWriter w;
  write_adapter_header(w, hp, "random test adapter", spec.alpha);
  std::mt19937_64 rng(spec.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  size_t n = 0;
  for (const Layer& L : base.layers) {
    for (const Weight* wt :
         {&L.wq, &L.wk, &L.wv, &L.wqkv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down}) {
      if (!wt->data) continue;
      bool wanted = false;
      for (const auto& t : spec.targets) wanted |= wt->name.ends_with("." + t + ".weight");
      if (!wanted) continue;
      ++n;
      const size_t R = spec.rank;
      for (auto [suffix, cols, rows, sd] :
           {std::tuple{".lora_a", wt->cols, R, 1.0f / std::sqrt(float(wt->cols))},
            std::tuple{".lora_b", R, wt->rows, spec.b_std}}) {
        std::vector<float> f(cols * rows);
        for (float& x : f) x = sd * normal(rng);
        add_float_tensor(w, wt->name + suffix, spec.type, f.data(), cols, rows);
      }
    }
  }
  if (n == 0) fail("make-test-lora: no weight of {} matches the targets", base.path());
  w.write(out);
}

}  // namespace dip
