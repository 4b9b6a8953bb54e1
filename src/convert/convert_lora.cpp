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

void write_lora_gguf(const Model& base, const LoraAdapter& a, const std::string& out,
                     TensorType type) {
  if (type != TensorType::F32 && type != TensorType::F16 && type != TensorType::BF16)
    fail("convert-lora: --type must be f32, f16 or bf16");
  const HParams& hp = base.hparams();
  GgufWriter w;
  w.set_string("general.architecture", hp.arch_name);
  w.set_string("general.type", "adapter");
  w.set_string("general.name", std::filesystem::path(a.path()).filename().string());
  w.set_u32("general.alignment", 32);
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", a.alpha());
  // A Hugging Face base keeps Llama's q/k rows in rotate-half order; the file wants GGUF order.
  const bool interleave = base.hf() && base.hf()->llama_qk_rotate_half;
  for (const LoraTensor& t : a.tensors()) {
    std::vector<float> b = t.b_f32;
    if (interleave && (t.base.ends_with(".attn_q.weight") || t.base.ends_with(".attn_k.weight")))
      interleave_rope_rows(b, t.rank, t.b.rows, hp.head_dim);
    for (auto [f, suffix, cols, rows] : {std::tuple{&t.a_f32, ".lora_a", t.a.cols, size_t(t.rank)},
                                         std::tuple{static_cast<const std::vector<float>*>(&b),
                                                    ".lora_b", size_t(t.rank), t.b.rows}}) {
      std::vector<uint8_t> bytes(rows * row_bytes(type, cols));
      for (size_t r = 0; r < rows; ++r)
        quantize_row(type, &(*f)[r * cols], bytes.data() + r * row_bytes(type, cols), cols);
      w.add_tensor(t.base + suffix, type, {cols, rows}, bytes.data(), bytes.size());
    }
  }
  w.write(out);
}

void write_synth_lora(const Model& base, const SynthLoraSpec& spec, const std::string& out) {
  if (spec.rank == 0) fail("make-test-lora: the rank must be positive");
  const HParams& hp = base.hparams();
  GgufWriter w;
  w.set_string("general.architecture", hp.arch_name);
  w.set_string("general.type", "adapter");
  w.set_string("general.name", "random test adapter");
  w.set_u32("general.alignment", 32);
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", spec.alpha);
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
        std::vector<uint8_t> bytes(rows * row_bytes(spec.type, cols));
        for (size_t r = 0; r < rows; ++r)
          quantize_row(spec.type, &f[r * cols], bytes.data() + r * row_bytes(spec.type, cols),
                       cols);
        w.add_tensor(wt->name + suffix, spec.type, {cols, rows}, bytes.data(), bytes.size());
      }
    }
  }
  if (n == 0) fail("make-test-lora: no weight of {} matches the targets", base.path());
  w.write(out);
}

}  // namespace dip
