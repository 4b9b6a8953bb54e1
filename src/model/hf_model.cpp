#include "model/hf_model.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "io/mapped_file.h"
#include "tokenizer/hf_tokenizer.h"
#include "util/error.h"

namespace dip {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool is_hf_model_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

namespace {

uint32_t get_u32(const json& j, const char* key, const std::string& name, bool required,
                 uint32_t def = 0) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) fail("{}: required key '{}' is missing", name, key);
    return def;
  }
  if (!j[key].is_number_unsigned() || j[key].get<uint64_t>() > 0xffffffffull) {
    fail("{}: key '{}' must be a non-negative integer", name, key);
  }
  return j[key].get<uint32_t>();
}

double get_f64(const json& j, const char* key, const std::string& name, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number()) fail("{}: key '{}' must be a number", name, key);
  return j[key].get<double>();
}

// Llama 3.1 rope_scaling: per-frequency divisors, computed as llama.cpp's converter does.
std::vector<float> llama3_rope_factors(const json& rs, double base, uint32_t dim,
                                       const std::string& name) {
  const double factor = get_f64(rs, "factor", name, 8.0);
  const double low = get_f64(rs, "low_freq_factor", name, 1.0);
  const double high = get_f64(rs, "high_freq_factor", name, 4.0);
  const double old_ctx = get_f64(rs, "original_max_position_embeddings", name, 8192);
  if (!(factor > 0 && high > low && old_ctx > 0))
    fail("{}: inconsistent llama3 rope_scaling", name);
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  std::vector<float> f;
  for (uint32_t i = 0; i < dim; i += 2) {
    const double freq = 1.0 / std::pow(base, double(i) / dim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      f.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      f.push_back(float(factor));
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      f.push_back(float(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return f;
}

}  // namespace

HParams parse_hf_config(const std::string& text, const std::string& name, std::string& architecture,
                        std::vector<float>& rope_freqs) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail("{}: malformed JSON: {}", name, e.what());
  }
  if (!j.is_object()) fail("{}: not a JSON object", name);
  if (!j.contains("architectures") || !j["architectures"].is_array() ||
      j["architectures"].empty() || !j["architectures"][0].is_string()) {
    fail("{}: 'architectures' is missing", name);
  }
  architecture = j["architectures"][0].get<std::string>();
  HParams hp;
  if (architecture == "LlamaForCausalLM" || architecture == "MistralForCausalLM")
    hp.arch = Arch::kLlama;
  else if (architecture == "Qwen2ForCausalLM")
    hp.arch = Arch::kQwen2;
  else if (architecture == "Qwen3ForCausalLM")
    hp.arch = Arch::kQwen3;
  else if (architecture == "Phi3ForCausalLM")
    hp.arch = Arch::kPhi3;
  else
    fail("{}: unsupported architecture '{}' (Llama, Mistral, Qwen2, Qwen3, Phi3 are supported)",
         name, architecture);
  hp.arch_name = arch_display_name(hp.arch);
  hp.n_embd = get_u32(j, "hidden_size", name, true);
  hp.n_ff = get_u32(j, "intermediate_size", name, true);
  hp.n_layer = get_u32(j, "num_hidden_layers", name, true);
  hp.n_head = get_u32(j, "num_attention_heads", name, true);
  hp.n_head_kv = get_u32(j, "num_key_value_heads", name, false, hp.n_head);
  hp.n_vocab = get_u32(j, "vocab_size", name, true);
  hp.n_ctx_train = get_u32(j, "max_position_embeddings", name, false, 4096);
  if (hp.n_embd == 0 || hp.n_ff == 0 || hp.n_layer == 0 || hp.n_head == 0 || hp.n_head_kv == 0 ||
      hp.n_vocab == 0) {
    fail("{}: a model dimension is zero", name);
  }
  if (hp.n_embd > (1u << 20) || hp.n_ff > (1u << 22) || hp.n_layer > 4096 || hp.n_head > 4096 ||
      hp.n_vocab > (1u << 24)) {
    fail("{}: absurd model dimensions", name);
  }
  if (hp.n_head % hp.n_head_kv)
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", name, hp.n_head,
         hp.n_head_kv);
  if (!j.contains("head_dim") && hp.n_embd % hp.n_head)
    fail("{}: hidden_size is not divisible by num_attention_heads", name);
  hp.head_dim = hp.head_dim_v = get_u32(j, "head_dim", name, false, hp.n_embd / hp.n_head);
  if (hp.head_dim == 0 || hp.head_dim % 2) fail("{}: head size {} must be even", name, hp.head_dim);
  const double partial = get_f64(j, "partial_rotary_factor", name, 1.0);
  hp.n_rot = uint32_t(std::lround(hp.head_dim * partial)) & ~1u;
  hp.rms_eps = float(get_f64(j, "rms_norm_eps", name, 1e-6));
  if (!(hp.rms_eps > 0 && hp.rms_eps < 1)) fail("{}: rms_norm_eps out of range", name);
  // transformers >= 5 moves rope_theta and rope_scaling into "rope_parameters".
  const json rope = j.contains("rope_parameters") && j["rope_parameters"].is_object()
                        ? j["rope_parameters"]
                        : json::object();
  hp.rope_base =
      float(get_f64(rope.contains("rope_theta") ? rope : j, "rope_theta", name, 10000.0));
  if (!(hp.rope_base > 1)) fail("{}: rope_theta out of range", name);
  if (hp.arch == Arch::kPhi3) hp.n_swa = get_u32(j, "sliding_window", name, false, 0);
  const json& rs_src =
      j.contains("rope_scaling") && j["rope_scaling"].is_object() ? j["rope_scaling"] : rope;
  if (rs_src.is_object() && !rs_src.empty()) {
    const json& rs = rs_src;
    const std::string type = rs.value("rope_type", rs.value("type", ""));
    if (type == "linear") {
      const double f = get_f64(rs, "factor", name, 1.0);
      if (!(f > 0)) fail("{}: rope_scaling.factor must be positive", name);
      hp.rope_freq_scale = float(1.0 / f);
    } else if (type == "llama3") {
      rope_freqs = llama3_rope_factors(rs, hp.rope_base, hp.n_rot, name);
    } else if (!type.empty() && type != "default") {
      fail("{}: rope_scaling type '{}' is not supported (linear, llama3 are)", name, type);
    }
  }
  // HF Llama checkpoints keep q/k in rotate-half order, which is NeoX-style RoPE.
  hp.rope_neox = true;
  return hp;
}

std::string gguf_tensor_name(const std::string& hf_name) {
  static const std::vector<std::pair<std::regex, std::string>> kNames = [] {
    std::vector<std::pair<std::regex, std::string>> v;
    auto add = [&](const char* re, const char* out) { v.emplace_back(std::regex(re), out); };
    add(R"(model\.embed_tokens\.weight)", "token_embd.weight");
    add(R"(model\.norm\.weight)", "output_norm.weight");
    add(R"(lm_head\.weight)", "output.weight");
    add(R"(model\.layers\.(\d+)\.input_layernorm\.weight)", "blk.$1.attn_norm.weight");
    add(R"(model\.layers\.(\d+)\.post_attention_layernorm\.weight)", "blk.$1.ffn_norm.weight");
    add(R"(model\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias))", "blk.$1.attn_q.$2");
    add(R"(model\.layers\.(\d+)\.self_attn\.k_proj\.(weight|bias))", "blk.$1.attn_k.$2");
    add(R"(model\.layers\.(\d+)\.self_attn\.v_proj\.(weight|bias))", "blk.$1.attn_v.$2");
    add(R"(model\.layers\.(\d+)\.self_attn\.o_proj\.weight)", "blk.$1.attn_output.weight");
    add(R"(model\.layers\.(\d+)\.self_attn\.qkv_proj\.weight)", "blk.$1.attn_qkv.weight");
    add(R"(model\.layers\.(\d+)\.self_attn\.q_norm\.weight)", "blk.$1.attn_q_norm.weight");
    add(R"(model\.layers\.(\d+)\.self_attn\.k_norm\.weight)", "blk.$1.attn_k_norm.weight");
    add(R"(model\.layers\.(\d+)\.mlp\.gate_proj\.weight)", "blk.$1.ffn_gate.weight");
    add(R"(model\.layers\.(\d+)\.mlp\.up_proj\.weight)", "blk.$1.ffn_up.weight");
    add(R"(model\.layers\.(\d+)\.mlp\.gate_up_proj\.weight)", "blk.$1.ffn_up.weight");
    add(R"(model\.layers\.(\d+)\.mlp\.down_proj\.weight)", "blk.$1.ffn_down.weight");
    return v;
  }();
  for (const auto& [re, out] : kNames) {
    std::smatch sm;
    if (std::regex_match(hf_name, sm, re)) return sm.format(out);
  }
  return {};
}

std::unique_ptr<HfModel> load_hf_model(const std::string& dir, bool vocab_only) {
  auto m = std::make_unique<HfModel>();
  m->dir = dir;
  const std::string cfg = dir + "/config.json";
  if (!fs::exists(cfg)) fail("{}: not a model folder: config.json is missing", dir);
  m->hp = parse_hf_config(read_text_file(cfg), cfg, m->architecture, m->rope_freqs);
  m->llama_qk_rotate_half = m->hp.arch == Arch::kLlama;
  m->vocab = load_hf_tokenizer(dir, m->hp.n_vocab);
  if (uint32_t(m->vocab.n_tokens()) != m->hp.n_vocab) {
    fail("{}: tokenizer.json has {} tokens but config.json vocab_size is {}", dir,
         m->vocab.n_tokens(), m->hp.n_vocab);
  }
  if (vocab_only) return m;

  // Shards: the index's weight_map, or the single model.safetensors.
  std::vector<std::string> files;
  const std::string index = dir + "/model.safetensors.index.json";
  if (fs::exists(index)) {
    json j;
    try {
      j = json::parse(read_text_file(index));
    } catch (const json::exception& e) {
      fail("{}: malformed JSON: {}", index, e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail("{}: weight_map is missing", index);
    std::set<std::string> uniq;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        fail("{}: weight_map entry '{}' is not a file name", index, it.key());
      const std::string f = it.value().get<std::string>();
      if (f.find('/') != std::string::npos || f == "..")
        fail("{}: shard name '{}' must be a plain file name", index, f);
      uniq.insert(f);
    }
    for (const auto& f : uniq) {
      if (!fs::exists(dir + "/" + f))
        fail("{}: missing shard {} (listed in model.safetensors.index.json)", dir, f);
      files.push_back(dir + "/" + f);
    }
  } else if (fs::exists(dir + "/model.safetensors")) {
    files.push_back(dir + "/model.safetensors");
  } else {
    fail("{}: no model.safetensors and no model.safetensors.index.json", dir);
  }

  std::set<std::string> seen;
  for (const auto& f : files) {
    m->shards.push_back(std::make_unique<SafetensorsFile>(f));
    for (const auto& t : m->shards.back()->tensors()) {
      if (t.name.find("rotary_emb.inv_freq") != std::string::npos) continue;  // recomputed
      const std::string gname = gguf_tensor_name(t.name);
      if (gname.empty()) fail("{}: unexpected tensor '{}' for {}", f, t.name, m->architecture);
      if (!seen.insert(gname).second) fail("{}: tensor '{}' appears twice", dir, t.name);
      GgufTensorInfo ti;
      ti.name = gname;
      ti.type_id = t.ggml_type;
      ti.dims.assign(t.shape.rbegin(), t.shape.rend());
      if (ti.dims.empty()) fail("{}: tensor '{}' is a scalar", f, t.name);
      ti.n_elements = 1;
      for (uint64_t d : ti.dims) ti.n_elements *= d;
      ti.n_bytes = t.n_bytes;
      ti.data = t.data;
      m->tensors.push_back(std::move(ti));
    }
  }
  return m;
}

}  // namespace dip
