#include "model/hparams.h"

#include "io/gguf.h"
#include "util/error.h"

namespace dip {

const char* arch_display_name(Arch a) {
  switch (a) {
    case Arch::kLlama:
      return "llama";
    case Arch::kQwen2:
      return "qwen2";
    case Arch::kQwen3:
      return "qwen3";
    case Arch::kPhi3:
      return "phi3";
  }
  return "?";
}

HParams load_hparams(const GgufFile& g) {
  const std::string& path = g.path();
  HParams hp;
  hp.arch_name = g.get_string("general.architecture").value_or("");
  if (hp.arch_name.empty()) fail("{}: general.architecture is missing", path);
  if (hp.arch_name == "llama")
    hp.arch = Arch::kLlama;
  else if (hp.arch_name == "qwen2")
    hp.arch = Arch::kQwen2;
  else if (hp.arch_name == "qwen3")
    hp.arch = Arch::kQwen3;
  else if (hp.arch_name == "phi3")
    hp.arch = Arch::kPhi3;
  else
    fail("{}: unsupported architecture '{}' (supported: llama, qwen2, qwen3, phi3)", path,
         hp.arch_name);

  const std::string a = hp.arch_name + ".";
  auto req = [&](const std::string& key) -> uint32_t {
    auto v = g.get_uint(a + key);
    if (!v) fail("{}: required key '{}' is missing", path, a + key);
    if (*v > 0xffffffffull) fail("{}: key '{}' = {} is out of range", path, a + key, *v);
    return uint32_t(*v);
  };
  auto opt = [&](const std::string& key, uint32_t def) -> uint32_t {
    auto v = g.get_uint(a + key);
    if (v && *v > 0xffffffffull) fail("{}: key '{}' = {} is out of range", path, a + key, *v);
    return v ? uint32_t(*v) : def;
  };
  hp.n_ctx_train = req("context_length");
  hp.n_embd = req("embedding_length");
  hp.n_layer = req("block_count");
  hp.n_ff = req("feed_forward_length");
  hp.n_head = req("attention.head_count");
  hp.n_head_kv = opt("attention.head_count_kv", hp.n_head);
  if (hp.n_embd == 0 || hp.n_layer == 0 || hp.n_ff == 0 || hp.n_head == 0 || hp.n_head_kv == 0) {
    fail("{}: a model dimension is zero (embedding {}, layers {}, ff {}, heads {}, kv heads {})",
         path, hp.n_embd, hp.n_layer, hp.n_ff, hp.n_head, hp.n_head_kv);
  }
  if (hp.n_embd > (1u << 20) || hp.n_ff > (1u << 22) || hp.n_layer > 4096 || hp.n_head > 4096) {
    fail("{}: absurd model dimensions (embedding {}, ff {}, layers {}, heads {})", path, hp.n_embd,
         hp.n_ff, hp.n_layer, hp.n_head);
  }
  if (hp.n_head % hp.n_head_kv != 0) {
    fail("{}: attention.head_count {} is not a multiple of attention.head_count_kv {}", path,
         hp.n_head, hp.n_head_kv);
  }
  const uint32_t def_hd = hp.n_embd / hp.n_head;
  if (!g.find(a + "attention.key_length") && hp.n_embd % hp.n_head != 0) {
    fail("{}: embedding_length {} is not divisible by head_count {}", path, hp.n_embd, hp.n_head);
  }
  hp.head_dim = opt("attention.key_length", def_hd);
  hp.head_dim_v = opt("attention.value_length", def_hd);
  if (hp.head_dim != hp.head_dim_v) {
    fail("{}: attention.key_length {} differs from value_length {} (not supported)", path,
         hp.head_dim, hp.head_dim_v);
  }
  if (hp.head_dim == 0 || hp.head_dim % 2 != 0)
    fail("{}: head size {} must be even and non-zero", path, hp.head_dim);
  hp.n_rot = opt("rope.dimension_count", hp.head_dim);
  if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
    fail("{}: rope.dimension_count {} must be even and at most the head size {}", path, hp.n_rot,
         hp.head_dim);
  }
  // llama.cpp applies a sliding window only for phi3 among these architectures (Mistral GGUFs
  // may carry the key but are run with full attention).
  hp.n_swa = hp.arch == Arch::kPhi3 ? opt("attention.sliding_window", 0) : 0;
  if (auto e = g.get_float(a + "attention.layer_norm_rms_epsilon"))
    hp.rms_eps = float(*e);
  else
    fail("{}: required key '{}' is missing", path, a + "attention.layer_norm_rms_epsilon");
  if (!(hp.rms_eps > 0 && hp.rms_eps < 1))
    fail("{}: RMS norm epsilon {} is out of range", path, hp.rms_eps);
  if (auto b = g.get_float(a + "rope.freq_base")) hp.rope_base = float(*b);
  if (!(hp.rope_base > 1)) fail("{}: rope.freq_base {} is out of range", path, hp.rope_base);
  const std::string scaling = g.get_string(a + "rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    const double f = g.get_float(a + "rope.scaling.factor").value_or(1.0);
    if (!(f > 0)) fail("{}: rope.scaling.factor {} must be positive", path, f);
    hp.rope_freq_scale = float(1.0 / f);
  } else if (scaling != "none") {
    fail("{}: RoPE scaling '{}' is not supported (none, linear, and Llama-3 rope_freqs are)", path,
         scaling);
  }
  if (auto f = g.get_float(a + "rope.scale_linear")) hp.rope_freq_scale = float(1.0 / *f);
  hp.rope_neox = hp.arch != Arch::kLlama;
  return hp;
}

}  // namespace dip
