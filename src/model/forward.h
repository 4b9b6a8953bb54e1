// The forward pass: one session = one sequence with its KV cache (fp16, as llama.cpp's default).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "model/model.h"
#include "ops/matvec.h"
#include "util/huge_buffer.h"
#include "util/threadpool.h"

namespace dip {

class MlpHook;

// Sees every token's dense MLP signals: x (MLP input after the norm, n_embd), gate (W_gate x,
// n_ff) and h (down-projection input, n_ff). Used by calibration.
using MlpObserver =
    std::function<void(uint32_t layer, const float* x, const float* gate, const float* h)>;

class Session {
 public:
  Session(const Model& model, uint32_t n_ctx, int n_threads);

  // Runs `tokens` at positions n_past() ... and appends them to the cache. Writes logits of
  // every token (all_logits) or of the last one into `logits` (n_out x n_vocab).
  void eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits);

  uint32_t n_past() const { return n_past_; }
  uint32_t n_ctx() const { return n_ctx_; }
  void reset() { n_past_ = 0; }
  const Model& model() const { return model_; }
  ThreadPool& pool() { return pool_; }

  // With a sparse MLP set (and not dense), every token's MLP runs through it; null restores
  // the dense batched path. The Session does not own it.
  // Replaces the MLP of every layer (null: the model's own dense MLP).
  void set_mlp_hook(MlpHook* mlp) { sparse_ = mlp; }
  void set_mlp_observer(MlpObserver obs) { observer_ = std::move(obs); }
  // Off: the model's adapters are ignored (the base model's outputs, e.g. as a reference).
  void set_lora_enabled(bool on) { lora_enabled_ = on; }
  // Tokens per internal batch (default 512); flash runs use small batches to bound buffers.
  void set_max_batch(uint32_t n) { max_batch_ = n > 0 ? n : 1; }

 private:
  void eval_batch(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits);
  // y[b] = W x[b] for the batch, encoding x for W's type. With new_input false the previous
  // encoding is reused when it was made from the same buffer for the same type.
  void project(const Weight& w, const float* x, size_t stride, size_t batch, float* y,
               size_t y_stride, bool new_input);
  // y[b] += the adapter's update of x[b] (the weight's product is in y already).
  void add_lora(const LoraTensor& t, const float* x, size_t stride, size_t batch, float* y,
                size_t y_stride);
  void attention(uint32_t layer, size_t batch);

  void dense_mlp(uint32_t il, size_t batch);

  const Model& model_;
  MlpHook* sparse_ = nullptr;
  MlpObserver observer_;
  const HParams& hp_;
  uint32_t n_ctx_;
  uint32_t n_past_ = 0;
  uint32_t max_batch_ = 512;
  bool lora_enabled_ = true;
  ThreadPool pool_;

  HugeBuffer k_buf_, v_buf_;  // [layer][pos][n_embd_k] fp16
  uint16_t* k_cache() { return reinterpret_cast<uint16_t*>(k_buf_.data()); }
  uint16_t* v_cache() { return reinterpret_cast<uint16_t*>(v_buf_.data()); }
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, hbuf_;
  std::vector<float> rope_cos_, rope_sin_;
  EncodedActs enc_, lora_enc_;
  std::vector<float> lora_t_, lora_y_;
  const float* enc_src_ = nullptr;
  size_t enc_batch_ = 0;
};

}  // namespace dip
