#include "model/forward.h"

#include <cmath>
#include <cstring>

#include "model/mlp_hook.h"
#include "ops/attention_order.h"
#include "ops/elementwise.h"
#include "ops/elementwise_simd.h"
#include "ops/quant.h"
#include "ops/repack_x8.h"
#include "util/error.h"
#include "util/fp.h"

namespace dip {

Session::Session(const Model& model, uint32_t n_ctx, int n_threads)
    : model_(model), hp_(model.hparams()), n_ctx_(n_ctx), pool_(n_threads) {
  if (n_ctx == 0) fail("context size must be positive");
  if (n_ctx > (1u << 20)) fail("context size {} is absurd", n_ctx);
  // Mapped, not written: the kernel hands out zero pages as positions fill, so a large context
  // costs memory only for the tokens actually in it.
  const size_t kv = checked_mul(checked_mul(hp_.n_layer, n_ctx, "KV cache size"), hp_.n_embd_k(),
                                "KV cache size");
  k_buf_ = HugeBuffer(kv * sizeof(uint16_t), false);
  v_buf_ = HugeBuffer(kv * sizeof(uint16_t), false);
}

void Session::project(const Weight& w, const float* x, size_t stride, size_t batch, float* y,
                      size_t y_stride, bool new_input) {
  // Encoding is shared by projections of the same input (q/k/v, gate/up) of the same type.
  if (new_input || enc_src_ != x || enc_batch_ != batch || enc_.type != activation_type(w.type) ||
      enc_.n != w.cols) {
    encode_acts(w.type, x, w.cols, batch, stride, enc_);
    enc_src_ = x;
    enc_batch_ = batch;
  }
  if (const uint8_t* packed = model_.repacked(w)) {
    matmul_x8(w.type, packed, w.cols, w.rows, enc_, y, y_stride, &pool_);
  } else {
    matmul(w.type, w.data, w.cols, w.rows, enc_, y, y_stride, &pool_);
  }
  if (lora_enabled_)
    for (const LoraTensor* t : w.lora) add_lora(*t, x, stride, batch, y, y_stride);
}

void Session::add_lora(const LoraTensor& t, const float* x, size_t stride, size_t batch, float* y,
                       size_t y_stride) {
  // As llama.cpp: A x and B (A x) with activations encoded for A's and B's types, then
  // y += scale * B A x.
  const size_t R = t.rank, out = t.b.rows;
  encode_acts(t.a.type, x, t.a.cols, batch, stride, lora_enc_);
  lora_t_.resize(batch * R);
  matmul(t.a.type, t.a.data, t.a.cols, R, lora_enc_, lora_t_.data(), R, &pool_);
  encode_acts(t.b.type, lora_t_.data(), R, batch, R, lora_enc_);
  lora_y_.resize(batch * out);
  matmul(t.b.type, t.b.data, R, out, lora_enc_, lora_y_.data(), out, &pool_);
  for (size_t b = 0; b < batch; ++b)
    for (size_t r = 0; r < out; ++r) y[b * y_stride + r] += t.scale * lora_y_[b * out + r];
}

void Session::eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits) {
  if (tokens.empty()) fail("nothing to evaluate (no tokens)");
  if (n_past_ + tokens.size() > n_ctx_) {
    fail("context is full: {} + {} tokens exceed the context size {}", n_past_, tokens.size(),
         n_ctx_);
  }
  for (int32_t t : tokens) {
    if (t < 0 || uint32_t(t) >= hp_.n_vocab)
      fail("token id {} is out of range (vocabulary has {})", t, hp_.n_vocab);
  }
  logits.clear();
  logits.reserve((all_logits ? tokens.size() : 1) * size_t(hp_.n_vocab));  // no growth by doubling
  std::vector<float> part;
  for (size_t i = 0; i < tokens.size(); i += max_batch_) {
    const size_t n = std::min(size_t(max_batch_), tokens.size() - i);
    const bool last = i + n == tokens.size();
    if (!all_logits && !last) {
      eval_batch(tokens.subspan(i, n), false, part);  // logits of this batch are not needed
      continue;
    }
    eval_batch(tokens.subspan(i, n), all_logits, part);
    logits.insert(logits.end(), part.begin(), part.end());
  }
}

void Session::attention(uint32_t il, size_t B) {
  const uint32_t H = hp_.n_head, HKV = hp_.n_head_kv, hd = hp_.head_dim, Ek = hp_.n_embd_k();
  const uint32_t group = H / HKV;
  const float scale = hp_.arch == Arch::kPhi3 ? 1.0f : 1.0f / std::sqrt(float(hd));
  const uint16_t* kc = k_cache() + size_t(il) * n_ctx_ * Ek;
  const uint16_t* vc = v_cache() + size_t(il) * n_ctx_ * Ek;
  const uint32_t n_kv = n_past_ + uint32_t(B);
  // llama.cpp's paths for the two products (attention_order.h): its key range is a multiple of
  // 256 positions, so only the head size and the batch decide.
  const F16DotOrder kq_order = ggml_f16_order(B, hd, 256), kqv_order = ggml_f16_order(B, 256, hd);
  // One head per job. A batch decodes the head's K and V rows to floats once and reuses them
  // for every query; one token reads the F16 cache in place (each row is used once).
  const bool decode = B > 1;
  pool_.parallel_for(H, 1, [&](size_t h0, size_t h1) {
    thread_local std::vector<float> kf, vf, scores, q16, scratch;
    if (decode) {
      kf.resize(size_t(n_kv) * hd);
      vf.resize(size_t(n_kv) * hd);
    }
    scores.resize(n_kv);
    q16.resize(hd);
    scratch.resize(64 * size_t(hd));
    for (size_t h = h0; h < h1; ++h) {
      const size_t kvh = h / group;
      const uint16_t* kh = kc + kvh * hd;
      const uint16_t* vh = vc + kvh * hd;
      if (decode) {
        for (uint32_t j = 0; j < n_kv; ++j) {
          decode_half_row(false, kh + size_t(j) * Ek, &kf[size_t(j) * hd], hd);
          decode_half_row(false, vh + size_t(j) * Ek, &vf[size_t(j) * hd], hd);
        }
      }
      for (size_t b = 0; b < B; ++b) {
        const uint32_t pos = n_past_ + uint32_t(b);
        const float* q = q_.data() + b * hp_.n_embd_q() + h * hd;
        // llama.cpp multiplies the f16 cache with an f16 copy of q and an f16 copy of the
        // probabilities, in the orders of attention_order.h: the same here, bit for bit.
        round_fp16_simd(q, 1.0f, q16.data(), hd);
        const uint32_t first = hp_.n_swa && pos + 1 > hp_.n_swa ? pos + 1 - hp_.n_swa : 0;
        if (decode) {
          f16_score_rows_simd(kq_order, kf.data(), hd, first, pos + 1, q16.data(), hd, scale,
                              scores.data());
        } else {
          f16_score_rows_simd(kq_order, kh, Ek, first, pos + 1, q16.data(), hd, scale,
                              scores.data());
        }
        float* row = scores.data() + first;
        const size_t n_row = pos + 1 - first;
        exp_shifted_simd(row, n_row, max_simd(row, n_row));
        const float inv = float(1.0 / softmax_sum_ggml(scores.data(), first, pos + 1));
        round_fp16_simd(row, inv, row, n_row);
        float* out = att_.data() + b * hp_.n_embd_q() + h * hd;
        if (decode) {
          f16_weighted_sum_simd(kqv_order, scores.data(), vf.data(), hd, first, pos + 1, hd,
                                scratch.data(), out);
        } else {
          f16_weighted_sum_simd(kqv_order, scores.data(), vh, Ek, first, pos + 1, hd,
                                scratch.data(), out);
        }
      }
    }
  });
}

void Session::dense_mlp(uint32_t il, size_t B) {
  const Layer& L = model_.layers[il];
  const size_t E = hp_.n_embd, F = hp_.n_ff;
  const bool fused = L.fused_gate_up();
  if (fused) {
    project(L.ffn_up, xn_.data(), E, B, gate_.data(), 2 * F, true);
    for (size_t b = 0; b < B; ++b)
      swiglu_simd(&gate_[b * 2 * F], &gate_[b * 2 * F + F], &hbuf_[b * F], F);
  } else {
    project(L.ffn_gate, xn_.data(), E, B, gate_.data(), F, true);
    project(L.ffn_up, xn_.data(), E, B, up_.data(), F, false);
    for (size_t b = 0; b < B; ++b) swiglu_simd(&gate_[b * F], &up_[b * F], &hbuf_[b * F], F);
  }
  if (observer_) {
    for (size_t b = 0; b < B; ++b)
      observer_(il, &xn_[b * E], &gate_[b * (fused ? 2 : 1) * F], &hbuf_[b * F]);
  }
  project(L.ffn_down, hbuf_.data(), F, B, xn_.data(), E, true);
}

void Session::eval_batch(std::span<const int32_t> tokens, bool all_logits,
                         std::vector<float>& logits) {
  const size_t B = tokens.size();
  const size_t E = hp_.n_embd, Eq = hp_.n_embd_q(), Ek = hp_.n_embd_k(), F = hp_.n_ff;
  const uint32_t hd = hp_.head_dim;
  x_.resize(B * E);
  xn_.resize(B * E);
  q_.resize(B * (Eq + 2 * Ek));
  k_.resize(B * Ek);
  v_.resize(B * Ek);
  att_.resize(B * Eq);
  const bool dense = !(sparse_ && sparse_->active());
  if (dense) {  // the pruned MLP has its own per-token buffers
    gate_.resize(B * 2 * F);
    up_.resize(B * F);
    hbuf_.resize(B * F);
  }
  enc_src_ = nullptr;

  for (size_t b = 0; b < B; ++b)
    dequantize_row(model_.tok_embd.type, model_.tok_embd.row(tokens[b]), &x_[b * E], E);

  RopeParams rp;
  rp.n_rot = hp_.n_rot;
  rp.base = hp_.rope_base;
  rp.freq_scale = hp_.rope_freq_scale;
  rp.neox = hp_.rope_neox;
  rp.freq_factors = model_.rope_freqs.empty() ? nullptr : model_.rope_freqs.data();
  rope_cos_.resize(B * hp_.n_rot / 2);
  rope_sin_.resize(B * hp_.n_rot / 2);
  for (size_t b = 0; b < B; ++b) {
    rope_cache(rp, int32_t(n_past_ + b), &rope_cos_[b * hp_.n_rot / 2],
               &rope_sin_[b * hp_.n_rot / 2]);
  }

  for (uint32_t il = 0; il < hp_.n_layer; ++il) {
    const Layer& L = model_.layers[il];
    for (size_t b = 0; b < B; ++b)
      rms_norm(&x_[b * E], L.attn_norm.data(), &xn_[b * E], E, hp_.rms_eps);
    if (L.fused_qkv()) {
      const size_t R = Eq + 2 * Ek;
      project(L.wqkv, xn_.data(), E, B, q_.data(), R, true);
      for (size_t b = 0; b < B; ++b) {  // unpack [q k v] rows; q is compacted to stride Eq
        std::memcpy(&k_[b * Ek], &q_[b * R + Eq], Ek * 4);
        std::memcpy(&v_[b * Ek], &q_[b * R + Eq + Ek], Ek * 4);
        std::memmove(&q_[b * Eq], &q_[b * R], Eq * 4);
      }
    } else {
      project(L.wq, xn_.data(), E, B, q_.data(), Eq, true);
      project(L.wk, xn_.data(), E, B, k_.data(), Ek, false);
      project(L.wv, xn_.data(), E, B, v_.data(), Ek, false);
    }
    for (size_t b = 0; b < B; ++b) {
      float* q = &q_[b * Eq];
      float* k = &k_[b * Ek];
      float* v = &v_[b * Ek];
      if (!L.bq.empty())
        for (size_t i = 0; i < Eq; ++i) q[i] += L.bq[i];
      if (!L.bk.empty())
        for (size_t i = 0; i < Ek; ++i) k[i] += L.bk[i];
      if (!L.bv.empty())
        for (size_t i = 0; i < Ek; ++i) v[i] += L.bv[i];
      if (!L.q_norm.empty()) {
        for (uint32_t h = 0; h < hp_.n_head; ++h)
          rms_norm(q + h * hd, L.q_norm.data(), q + h * hd, hd, hp_.rms_eps);
        for (uint32_t h = 0; h < hp_.n_head_kv; ++h)
          rms_norm(k + h * hd, L.k_norm.data(), k + h * hd, hd, hp_.rms_eps);
      }
      const float* c = &rope_cos_[b * hp_.n_rot / 2];
      const float* s = &rope_sin_[b * hp_.n_rot / 2];
      for (uint32_t h = 0; h < hp_.n_head; ++h) rope_apply(rp, c, s, q + h * hd);
      for (uint32_t h = 0; h < hp_.n_head_kv; ++h) rope_apply(rp, c, s, k + h * hd);
      if (hp_.arch == Arch::kPhi3) {
        const float qs = 1.0f / std::sqrt(float(hd));
        for (size_t i = 0; i < Eq; ++i) q[i] *= qs;
      }
      uint16_t* kc = k_cache() + (size_t(il) * n_ctx_ + n_past_ + b) * Ek;
      uint16_t* vc = v_cache() + (size_t(il) * n_ctx_ + n_past_ + b) * Ek;
      for (size_t i = 0; i < Ek; ++i) {
        kc[i] = f32_to_fp16(k[i]);
        vc[i] = f32_to_fp16(v[i]);
      }
    }
    attention(il, B);
    project(L.wo, att_.data(), Eq, B, xn_.data(), E, true);
    for (size_t i = 0; i < B * E; ++i) x_[i] += xn_[i];

    for (size_t b = 0; b < B; ++b)
      rms_norm(&x_[b * E], L.ffn_norm.data(), &xn_[b * E], E, hp_.rms_eps);
    if (!dense) {
      // Per token: each token has its own masks. The result replaces xn_ row by row.
      for (size_t b = 0; b < B; ++b) {
        sparse_->forward(il, &xn_[b * E], &xn_[b * E], n_past_ + uint32_t(b), pool_);
      }
    } else {
      dense_mlp(il, B);
    }
    for (size_t i = 0; i < B * E; ++i) x_[i] += xn_[i];
    // One token: the next layer's up+gate reads can start now and run during its attention.
    if (!dense && B == 1 && il + 1 < hp_.n_layer)
      sparse_->prefetch_next(il + 1, x_.data(), n_past_);
  }

  const size_t first = all_logits ? 0 : B - 1;
  const size_t n_out = B - first;
  for (size_t b = first; b < B; ++b)
    rms_norm(&x_[b * E], model_.output_norm.data(), &xn_[(b - first) * E], E, hp_.rms_eps);
  logits.resize(n_out * hp_.n_vocab);
  project(model_.output, xn_.data(), E, n_out, logits.data(), hp_.n_vocab, true);
  n_past_ += uint32_t(B);
}

}  // namespace dip
