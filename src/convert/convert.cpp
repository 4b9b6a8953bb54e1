#include "convert/convert.h"

#include <fmt/format.h>

#include <filesystem>

#include "convert/quant_mix.h"
#include "io/gguf_writer.h"
#include "model/model.h"
#include "model/rope_rows.h"
#include "ops/quant.h"
#include "util/error.h"
#include "util/output_file.h"

namespace dip {

namespace {

int32_t gguf_token_type(uint32_t attr) {
  if (attr & kAttrByte) return 6;
  if (attr & kAttrControl) return 3;
  if (attr & kAttrUserDefined) return 4;
  if (attr & kAttrUnknown) return 2;
  if (attr & kAttrUnused) return 5;
  return 1;
}

void write_tokenizer(GgufWriter& w, const Vocab& v) {
  w.set_string("tokenizer.ggml.model", v.model_name);
  if (v.type == VocabType::kBpe) {
    w.set_string("tokenizer.ggml.pre", v.pre_name.empty() ? pre_type_gguf_name(v.pre) : v.pre_name);
  } else {
    w.set_string("tokenizer.ggml.pre", "default");
  }
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  for (const auto& t : v.tokens) {
    tokens.push_back(t.text);
    types.push_back(gguf_token_type(t.attr));
    scores.push_back(t.score);
  }
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  if (v.type == VocabType::kSpm) w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  if (v.type == VocabType::kBpe) {
    std::vector<std::pair<int32_t, std::string>> m;
    for (const auto& [k, rank] : v.bpe_ranks) {
      const size_t z = k.find('\0');
      m.emplace_back(rank, k.substr(0, z) + " " + k.substr(z + 1));
    }
    std::sort(m.begin(), m.end());
    std::vector<std::string> merges;
    for (auto& x : m) merges.push_back(std::move(x.second));
    w.set_string_array("tokenizer.ggml.merges", merges);
  }
  if (v.bos >= 0) w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(v.bos));
  if (v.eos >= 0) w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(v.eos));
  if (v.unk >= 0) w.set_u32("tokenizer.ggml.unknown_token_id", uint32_t(v.unk));
  if (v.pad >= 0) w.set_u32("tokenizer.ggml.padding_token_id", uint32_t(v.pad));
  w.set_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  w.set_bool("tokenizer.ggml.add_eos_token", v.add_eos);
  if (v.type == VocabType::kSpm) w.set_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
}

}  // namespace

void merge_lora(const Model& m, const std::string& name, std::vector<float>& w) {
  const Weight* wt = m.find_weight(name);
  if (!wt) return;
  const size_t cols = wt->cols;
  for (const LoraTensor* t : wt->lora) {
    for (size_t o = 0; o < wt->rows; ++o) {
      float* row = &w[o * cols];
      for (size_t r = 0; r < t->rank; ++r) {
        const float c = t->scale * t->b_f32[o * t->rank + r];
        const float* a = &t->a_f32[r * cols];
        for (size_t i = 0; i < cols; ++i) row[i] += c * a[i];
      }
    }
  }
}

void dequantize_tensor(const GgufTensorInfo& t, std::vector<float>& out) {
  const size_t cols = t.dims[0], rows = t.n_elements / cols;
  out.resize(t.n_elements);
  for (size_t r = 0; r < rows; ++r)
    dequantize_row(t.type(), t.data + r * row_bytes(t.type(), cols), &out[r * cols], cols);
}

void write_hparams(GgufWriter& w, const HParams& hp) {
  const std::string a = hp.arch_name;
  w.set_string("general.architecture", a);
  w.set_u32(a + ".context_length", hp.n_ctx_train);
  w.set_u32(a + ".embedding_length", hp.n_embd);
  w.set_u32(a + ".block_count", hp.n_layer);
  w.set_u32(a + ".feed_forward_length", hp.n_ff);
  w.set_u32(a + ".attention.head_count", hp.n_head);
  w.set_u32(a + ".attention.head_count_kv", hp.n_head_kv);
  if (hp.head_dim != hp.n_embd / hp.n_head) {
    w.set_u32(a + ".attention.key_length", hp.head_dim);
    w.set_u32(a + ".attention.value_length", hp.head_dim_v);
  }
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", hp.rms_eps);
  w.set_f32(a + ".rope.freq_base", hp.rope_base);
  w.set_u32(a + ".rope.dimension_count", hp.n_rot);
  if (hp.rope_freq_scale != 1.0f) {
    w.set_string(a + ".rope.scaling.type", "linear");
    w.set_f32(a + ".rope.scaling.factor", 1.0f / hp.rope_freq_scale);
  }
  if (hp.n_swa) w.set_u32(a + ".attention.sliding_window", hp.n_swa);
}

void convert_to_gguf(const Model& m, const std::string& out, const QuantMix& mix,
                     const std::function<void(size_t, size_t, const std::string&)>& progress) {
  const HParams& hp = m.hparams();
  GgufWriter w;
  write_hparams(w, hp);
  // As llama.cpp's converter: the folder's name (llama.cpp keys some per-model rules on it).
  std::string name = std::filesystem::path(m.path()).filename().string();
  if (m.gguf()) name = m.gguf()->get_string("general.name").value_or(name);
  w.set_string("general.name", name);
  w.set_u32("general.file_type", mix.file_type);
  w.set_u32("general.alignment", 32);
  w.set_u32(hp.arch_name + ".vocab_size", hp.n_vocab);
  write_tokenizer(w, m.vocab());

  const bool interleave = m.hf() && m.hf()->llama_qk_rotate_half;
  if (m.hf() && !m.rope_freqs.empty()) {
    w.add_tensor("rope_freqs.weight", TensorType::F32, {m.rope_freqs.size()}, m.rope_freqs.data(),
                 m.rope_freqs.size() * 4);
  }
  // Each tensor is converted when the file is written (one in memory at a time: models larger
  // than DRAM convert too).
  std::vector<float> f;
  MixModelShape mix_shape;
  mix_shape.n_layer = hp.n_layer;
  mix_shape.n_gqa = hp.n_head_kv ? hp.n_head / hp.n_head_kv : 1;
  mix_shape.output_is_token_embd = true;  // tied embeddings: no output.weight
  for (const auto& t : m.tensors())
    mix_shape.output_is_token_embd = mix_shape.output_is_token_embd && t.name != "output.weight";
  for (const auto& t : m.tensors()) {
    if (!is_supported_type(t.type_id))
      fail("{}: tensor '{}' has unsupported type {}", m.path(), t.name, ggml_type_name(t.type_id));
    const size_t cols = t.dims[0], rows = t.n_elements / cols;
    const TensorType tt = tensor_type_for(mix, t.name, t.dims.size(), cols, mix_shape);
    const bool qk = t.name.size() > 13 &&
                    (t.name.ends_with(".attn_q.weight") || t.name.ends_with(".attn_k.weight") ||
                     t.name.ends_with(".attn_q.bias") || t.name.ends_with(".attn_k.bias"));
    const size_t rb = row_bytes(tt, cols);
    w.add_tensor_deferred(t.name, tt, t.dims, rows * rb,
                          [&, &t = t, tt, cols, rows, qk, rb](uint8_t* dst) {
                            dequantize_tensor(t, f);
                            merge_lora(m, t.name, f);
                            if (interleave && qk)
                              interleave_rope_rows(f, t.dims.size() == 1 ? 1 : cols,
                                                   t.dims.size() == 1 ? cols : rows, hp.head_dim);
                            for (size_t r = 0; r < rows; ++r)
                              quantize_row(tt, &f[r * cols], dst + r * rb, cols);
                          });
  }
  w.write(out, progress);
}

}  // namespace dip

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "tokenizer/hf_tokenizer.h"

namespace dip {

void export_hf(const Model& m, const std::string& dir, TensorType dtype, uint64_t shard_bytes) {
  const HParams& hp = m.hparams();
  if (dtype != TensorType::F32 && dtype != TensorType::F16 && dtype != TensorType::BF16) {
    fail("export: dtype must be f32, f16 or bf16");
  }
  std::filesystem::create_directories(dir);
  static const char* kArch[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                "Phi3ForCausalLM"};
  static const char* kType[] = {"llama", "qwen2", "qwen3", "phi3"};
  const int ai = int(hp.arch);
  nlohmann::json cfg = {{"architectures", {kArch[ai]}},
                        {"model_type", kType[ai]},
                        {"hidden_size", hp.n_embd},
                        {"intermediate_size", hp.n_ff},
                        {"num_hidden_layers", hp.n_layer},
                        {"num_attention_heads", hp.n_head},
                        {"num_key_value_heads", hp.n_head_kv},
                        {"head_dim", hp.head_dim},
                        {"vocab_size", hp.n_vocab},
                        {"max_position_embeddings", hp.n_ctx_train},
                        {"rms_norm_eps", hp.rms_eps},
                        {"rope_theta", hp.rope_base},
                        {"hidden_act", "silu"},
                        {"tie_word_embeddings", m.output.data == m.tok_embd.data},
                        {"torch_dtype", dtype == TensorType::F32   ? "float32"
                                        : dtype == TensorType::F16 ? "float16"
                                                                   : "bfloat16"}};
  if (!m.rope_freqs.empty()) fail("export: models with RoPE frequency factors are not exported");
  write_file_atomically(dir + "/config.json", cfg.dump(1));
  write_hf_tokenizer(m.vocab(), dir);

  static const std::vector<std::pair<std::string, std::string>> kNames = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"},
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_qkv.weight", "self_attn.qkv_proj.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"}};
  const bool deinterleave = m.gguf() && hp.arch == Arch::kLlama;
  std::vector<std::vector<SafetensorsOut>> shards(1);
  uint64_t cur = 0;
  std::vector<float> f;
  for (const auto& t : m.tensors()) {
    std::string hf;
    if (t.name.rfind("blk.", 0) == 0) {
      const size_t dot = t.name.find('.', 4);
      const std::string layer = t.name.substr(4, dot - 4), rest = t.name.substr(dot + 1);
      std::string mapped =
          rest == "ffn_up.weight"
              ? (hp.arch == Arch::kPhi3 ? "mlp.gate_up_proj.weight" : "mlp.up_proj.weight")
              : "";
      for (const auto& [g, h] : kNames)
        if (g == rest) mapped = h;
      if (mapped.empty()) fail("export: no Hugging Face name for tensor '{}'", t.name);
      hf = "model.layers." + layer + "." + mapped;
    } else {
      for (const auto& [g, h] : kNames)
        if (g == t.name) hf = h;
      if (hf.empty()) fail("export: no Hugging Face name for tensor '{}'", t.name);
    }
    const size_t cols = t.dims[0], rows = t.n_elements / cols;
    dequantize_tensor(t, f);
    merge_lora(m, t.name, f);
    const bool qk = t.name.ends_with(".attn_q.weight") || t.name.ends_with(".attn_k.weight");
    if (deinterleave && qk) deinterleave_rope_rows(f, cols, rows, hp.head_dim);
    SafetensorsOut so;
    so.name = hf;
    so.dtype = dtype == TensorType::F32 ? "F32" : dtype == TensorType::F16 ? "F16" : "BF16";
    so.shape.assign(t.dims.rbegin(), t.dims.rend());
    so.bytes.resize(f.size() * (dtype == TensorType::F32 ? 4 : 2));
    quantize_row(dtype, f.data(), so.bytes.data(), f.size());
    if (cur > 0 && cur + so.bytes.size() > shard_bytes) {
      shards.emplace_back();
      cur = 0;
    }
    cur += so.bytes.size();
    shards.back().push_back(std::move(so));
  }
  if (shards.size() == 1) {
    write_safetensors(dir + "/model.safetensors", shards[0]);
    return;
  }
  nlohmann::json index = {{"metadata", {{"total_size", 0}}},
                          {"weight_map", nlohmann::json::object()}};
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string fname =
        fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    for (const auto& t : shards[i]) index["weight_map"][t.name] = fname;
    write_safetensors(dir + "/" + fname, shards[i]);
  }
  write_file_atomically(dir + "/model.safetensors.index.json", index.dump(1));
}

}  // namespace dip
