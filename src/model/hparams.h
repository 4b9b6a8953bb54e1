// Architecture and hyper-parameters of a model, read from GGUF metadata with llama.cpp's keys.
#pragma once
#include <cstdint>
#include <string>

namespace dip {

class GgufFile;

enum class Arch { kLlama, kQwen2, kQwen3, kPhi3 };

struct HParams {
  Arch arch = Arch::kLlama;
  std::string arch_name;
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_ff = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t head_dim = 0;  // per-head size of q and k (attention.key_length)
  uint32_t head_dim_v = 0;
  uint32_t n_rot = 0;  // rotated dimensions per head
  uint32_t n_swa = 0;  // sliding window (0 = full attention)
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  bool rope_neox = false;  // rotate pairs (i, i + n_rot/2) instead of (2i, 2i+1)

  uint32_t n_embd_q() const { return n_head * head_dim; }
  uint32_t n_embd_k() const { return n_head_kv * head_dim; }
  uint32_t n_embd_v() const { return n_head_kv * head_dim_v; }
};

// Reads and validates the hyper-parameters; fails naming the file and the inconsistent key.
HParams load_hparams(const GgufFile& gguf);
const char* arch_display_name(Arch a);

}  // namespace dip
