#include "sparsity/sparse_mlp.h"

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

#include "flash/flash_columns.h"
#include "io/mapped_file.h"
#include "model/model.h"
#include "ops/elementwise.h"
#include "ops/elementwise_simd.h"
#include "sparsity/masker.h"
#include "sparsity/select.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {

SparseMlp::SparseMlp(const Model& m, const SparsityConfig& cfg, const Thresholds* thresholds,
                     FlashColumns* flash)
    : model_(m), cfg_(cfg), masker_(masker_for(cfg.method)), thr_(thresholds), flash_(flash) {
  const HParams& hp = m.hparams();
  validate(cfg_);
  if (cfg_.keep.size() != hp.n_layer)
    fail("internal: keep fractions not resolved for {} layers", hp.n_layer);
  if ((cfg_.use_thresholds || masker_.always_thresholds()) && !thr_)
    fail("{} needs calibrated thresholds (--thresholds FILE)", masker_.name());
  const size_t E = hp.n_embd, F = hp.n_ff;
  layers_.resize(hp.n_layer);
  const bool up_cols = masker_.masks_inputs();
  if (flash_) {
    if (!masker_.runs_from_flash()) {
      fail(
          "{} reads gate (and up) rows densely; with the MLP on flash use dense, dip, dip-ca or "
          "teal",
          masker_.name());
    }
    const FlashImage& img = flash_->image();
    const bool blocks = cfg_.mask_block_up > 1 || cfg_.mask_block_down > 1;
    for (uint32_t l = 0; l < hp.n_layer && blocks && img.layout() != FlashLayout::kModelOrder;
         ++l) {
      LayerState& s = layers_[l];
      s.file_order_up.resize(E);
      s.file_order_down.resize(F);
      for (uint32_t c = 0; c < E; ++c) s.file_order_up[img.slot(l, true, c)] = c;
      for (uint32_t c = 0; c < F; ++c) s.file_order_down[img.slot(l, false, c)] = c;
    }
    for (auto& s : layers_) {
      s.prefetched.assign(E, 0);
      s.up_cache = ColumnCache(E, flash_->capacity(true), cfg_.policy);
      s.down_cache = ColumnCache(F, flash_->capacity(false), cfg_.policy);
    }
  }
  // The modelled cache of a matrix of n columns: the explicit capacity, else cache_fraction of n.
  auto modelled_capacity = [&](int64_t explicit_cols, size_t n) {
    return explicit_cols >= 0 ? std::min(size_t(explicit_cols), n)
                              : size_t(std::floor(cfg_.cache_fraction * double(n)));
  };
  for (uint32_t l = 0; l < hp.n_layer && active() && !flash_; ++l) {
    LayerState& s = layers_[l];
    const bool uniform = cfg_.uniform_column_types;
    if (up_cols) s.up_gate = up_gate_column_matrix(m, l, layer_column_type(m, l, true, uniform));
    s.down = down_column_matrix(m, l, layer_column_type(m, l, false, uniform));
    s.up_cache = ColumnCache(E, modelled_capacity(cfg_.up_cache_columns, E), cfg_.policy);
    s.down_cache = ColumnCache(F, modelled_capacity(cfg_.down_cache_columns, F), cfg_.policy);
  }
  for (const Layer& L : m.layers) {
    dense_bytes_ +=
        L.ffn_up.bytes() + L.ffn_down.bytes() + (L.fused_gate_up() ? 0 : L.ffn_gate.bytes());
  }
  x_.resize(E);
  score_.resize(std::max(E, F));
  gu_.resize(2 * F);
  h_.resize(F);
  xs_.resize(std::max(E, F));
  ones_.assign(F, 1.0f);
  all_up_.resize(E);
  std::iota(all_up_.begin(), all_up_.end(), 0);
  all_down_.resize(F);
  std::iota(all_down_.begin(), all_down_.end(), 0);
  up_hits_.resize(E);
  down_hits_.resize(F);
  up_slots_.resize(E);
  down_slots_.resize(F);
  if (!cfg_.trace_file.empty() && active()) {
    TraceHeader th;
    th.n_layer = hp.n_layer;
    th.n_embd = uint32_t(E);
    th.n_ff = uint32_t(F);
    th.flags = cfg_.cache_fraction > 0 || cfg_.up_cache_columns > 0 ? 1u : 0u;
    th.method = cfg_.method;
    th.mlp_density = float(cfg_.mlp_density);
    th.gamma = masker_.cache_aware() ? float(cfg_.gamma) : 1.0f;
    th.cache_fraction =
        float(flash_                       ? double(flash_->capacity(true)) / double(E)
              : cfg_.up_cache_columns >= 0 ? double(cfg_.up_cache_columns) / double(E)
                                           : cfg_.cache_fraction);
    trace_ = std::make_unique<TraceWriter>(cfg_.trace_file, th);
  }
}

SparseMlp::~SparseMlp() = default;

TensorType SparseMlp::column_type_of(uint32_t il, bool up) const {
  if (flash_) return up ? flash_->image().up_type() : flash_->image().down_type();
  return up ? layers_[il].up_gate.type : layers_[il].down.type;
}

void SparseMlp::finish_trace() {
  if (trace_) trace_->close();
}

void SparseMlp::release_row_major_weights() const {
  if (!active() || !model_.gguf() || flash_)
    return;  // HF folders: safetensors mappings, left alone
  const bool up_cols = masker_.masks_inputs();
  for (const Layer& L : model_.layers) {
    release_mapped_pages(L.ffn_down.data, L.ffn_down.bytes());
    if (up_cols) {
      release_mapped_pages(L.ffn_up.data, L.ffn_up.bytes());
      if (!L.fused_gate_up()) release_mapped_pages(L.ffn_gate.data, L.ffn_gate.bytes());
    }
  }
}

uint64_t SparseMlp::column_bytes() const {
  uint64_t b = 0;
  for (const auto& s : layers_) b += s.up_gate.bytes() + s.down.bytes();
  return b;
}

const uint32_t* SparseMlp::file_order(uint32_t layer, bool up) const {
  const std::vector<uint32_t>& o =
      up ? layers_[layer].file_order_up : layers_[layer].file_order_down;
  return o.empty() ? nullptr : o.data();
}

void SparseMlp::choose_mask(uint32_t layer, bool up, float* score, size_t n, double keep,
                            uint32_t pos, std::vector<int32_t>& idx) {
  const ColumnCache& cache = up ? layers_[layer].up_cache : layers_[layer].down_cache;
  if (masker_.shape() == MlpShape::kAllColumns) {  // dense streaming (flash runs): every column
    idx = up ? all_up_ : all_down_;
    return;
  }
  if (cache.capacity() > 0) masker_.rescore(score, n, cache.cached(), cfg_, pos, sel_scratch_);
  if (cfg_.use_thresholds || masker_.always_thresholds()) {
    select_threshold(score, n, thr_->at(layer, masker_.threshold_signal(up), keep), idx);
  } else {
    select_topk_blocks(score, n, keep_count(keep, n),
                       up ? cfg_.mask_block_up : cfg_.mask_block_down, idx, block_score_,
                       block_idx_, topk_scratch_, file_order(layer, up));
  }
}

void SparseMlp::select(uint32_t layer, bool up, float* score, size_t n, double keep, uint32_t pos,
                       std::vector<int32_t>& idx, uint8_t* hits, int32_t* slots) {
  LayerState& s = layers_[layer];
  ColumnCache& cache = up ? s.up_cache : s.down_cache;
  choose_mask(layer, up, score, n, keep, pos, idx);
  if (cache.capacity() > 0 || flash_) {
    const size_t h = cache.access(idx.data(), idx.size(), hits, slots);
    if (up && !s.pf_list.empty()) {  // how many of the bundles read ahead this mask used
      for (size_t i = 0; i < idx.size(); ++i)
        stats_.prefetch_used += s.prefetched[size_t(idx[i])] & hits[i];
      for (int32_t c : s.pf_list) s.prefetched[size_t(c)] = 0;
      s.pf_list.clear();
    }
    (up ? stats_.up_hits : stats_.down_hits) += h;
    (up ? stats_.up_accesses : stats_.down_accesses) += idx.size();
  }
}

void SparseMlp::prefetch_next(uint32_t il, const float* x_resid, uint32_t pos) {
  if (!flash_ || !flash_->prefetch_enabled() || il >= layers_.size()) return;
  if (!masker_.runs_from_flash()) return;
  if (cfg_.use_thresholds || masker_.always_thresholds()) return;  // top-k masks only
  LayerState& s = layers_[il];
  ColumnCache& cache = s.up_cache;
  if (cache.capacity() == 0) return;
  const HParams& hp = model_.hparams();
  const size_t E = hp.n_embd;
  if (masker_.shape() != MlpShape::kAllColumns) {
    // The mask the layer would choose if its attention added nothing: the same norm, then the
    // real mask's choice (scores, DIP-CA's rescoring against the cache as it is now, top-k).
    pf_x_.resize(E);
    rms_norm(x_resid, model_.layers[il].ffn_norm.data(), pf_x_.data(), E, hp.rms_eps);
    for (size_t i = 0; i < E; ++i) pf_x_[i] = std::fabs(pf_x_[i]);
  }
  choose_mask(il, true, pf_x_.data(), E, cfg_.keep[il].up, pos, pf_idx_);
  pf_cols_.resize(pf_idx_.size());
  pf_slots_.resize(pf_idx_.size());
  const size_t n =
      cache.prefetch(pf_idx_.data(), pf_idx_.size(), pf_cols_.data(), pf_slots_.data());
  for (int32_t c : s.pf_list) s.prefetched[size_t(c)] = 0;
  s.pf_list.assign(pf_cols_.begin(), pf_cols_.begin() + long(n));
  for (int32_t c : s.pf_list) s.prefetched[size_t(c)] = 1;
  stats_.prefetched += n;
  flash_->prefetch(il, pf_cols_.data(), pf_slots_.data(), n);
}

void SparseMlp::multiply(uint32_t layer, bool up, const std::vector<int32_t>& idx, const float* xs,
                         float* y, ThreadPool& pool) {
  if (flash_) {
    flash_->multiply(layer, up, idx.data(), up ? up_hits_.data() : down_hits_.data(),
                     up ? up_slots_.data() : down_slots_.data(), xs, idx.size(), y, pool);
  } else {
    colsparse(up ? layers_[layer].up_gate : layers_[layer].down, idx.data(), xs, idx.size(), y,
              &pool);
  }
}

void SparseMlp::add_gate_up_lora(const Layer& L, const int32_t* idx, const float* xs, size_t n,
                                 bool with_up) {
  const size_t F = model_.hparams().n_ff;
  // Fused (phi3): ffn_up's adapter spans both halves of gu_ = [gate; up].
  const Weight& gate = L.fused_gate_up() ? L.ffn_up : L.ffn_gate;
  for (const LoraTensor* t : gate.lora) lora_add(*t, idx, xs, n, gu_.data(), lora_tmp_);
  if (with_up && !L.fused_gate_up())
    for (const LoraTensor* t : L.ffn_up.lora) lora_add(*t, idx, xs, n, gu_.data() + F, lora_tmp_);
}

void SparseMlp::forward(uint32_t il, const float* x_in, float* out, uint32_t pos,
                        ThreadPool& pool) {
  const auto t0 = std::chrono::steady_clock::now();
  const HParams& hp = model_.hparams();
  const size_t E = hp.n_embd, F = hp.n_ff;
  const Layer& L = model_.layers[il];
  const LayerKeep& keep = cfg_.keep[il];
  std::memcpy(x_.data(), x_in, E * sizeof(float));  // out may alias x
  double density = 1.0;
  uint64_t bytes = 0;
  const std::vector<int32_t>* up_mask = &all_up_;
  const uint8_t* up_hits = nullptr;

  if (!masker_.masks_inputs() && masker_.shape() != MlpShape::kAllColumns) {
    // Gate (and for GLU up) dense from the row-major weights.
    const Weight& gw = L.fused_gate_up() ? L.ffn_up : L.ffn_gate;
    encode_acts(gw.type, x_.data(), E, 1, E, enc_);
    matmul(gw.type, gw.data, E, F, enc_, gu_.data(), F,
           &pool);  // fused: the first F rows are the gate
    bytes += F * row_bytes(gw.type, E);
    const Weight& uw = L.ffn_up;
    const uint8_t* up_rows = L.fused_gate_up() ? uw.row(F) : uw.data;
    const size_t urb = row_bytes(uw.type, E);
    if (masker_.shape() == MlpShape::kDenseGateUp) {
      matmul(uw.type, up_rows, E, F, enc_, gu_.data() + F, F, &pool);
      add_gate_up_lora(L, nullptr, x_.data(), E, true);
      bytes += F * urb;
      swiglu_simd(gu_.data(), gu_.data() + F, h_.data(), F);
      for (size_t j = 0; j < F; ++j) score_[j] = std::fabs(h_[j]);
      select(il, false, score_.data(), F, keep.down, pos, down_idx_, down_hits_.data(),
             down_slots_.data());
      density = (2.0 + double(down_idx_.size()) / double(F)) / 3.0;
    } else {
      // CATS: neurons by |silu(gate)|; their up rows and down columns only.
      add_gate_up_lora(L, nullptr, x_.data(), E, false);
      swiglu_simd(gu_.data(), ones_.data(), h_.data(), F);  // silu(gate)
      for (size_t j = 0; j < F; ++j) score_[j] = std::fabs(h_[j]);
      select(il, false, score_.data(), F, keep.down, pos, down_idx_, down_hits_.data(),
             down_slots_.data());
      const size_t nk = down_idx_.size();
      xs_.resize(std::max(xs_.size(), nk));
      pool.parallel_for(nk, 16, [&](size_t a, size_t b) {
        for (size_t i = a; i < b; ++i) {
          const size_t j = size_t(down_idx_[i]);
          xs_[i] = dot_simd(uw.type, up_rows + j * urb, enc_.row(0), E);
        }
      });
      // The kept neurons' up adapters (fused: the up half's rows), then silu(gate) * up.
      const size_t row0 = L.fused_gate_up() ? F : 0;
      for (const LoraTensor* t : L.ffn_up.lora) {
        lora_project_a(*t, x_.data(), lora_tmp_);
        for (size_t i = 0; i < nk; ++i)
          xs_[i] += lora_row(*t, lora_tmp_, row0 + size_t(down_idx_[i]));
      }
      for (size_t i = 0; i < nk; ++i) xs_[i] *= h_[size_t(down_idx_[i])];
      bytes += nk * urb;
      density = (1.0 + 2.0 * double(nk) / double(F)) / 3.0;
    }
  } else {
    // DIP, DIP-CA, TEAL: up/gate columns of the kept inputs, then down columns of kept h.
    if (flash_) flash_->finish_prefetch(il);  // before the cache hands out slots again
    for (size_t i = 0; i < E; ++i) score_[i] = std::fabs(x_[i]);
    select(il, true, score_.data(), E, keep.up, pos, up_idx_, up_hits_.data(), up_slots_.data());
    for (size_t i = 0; i < up_idx_.size(); ++i) xs_[i] = x_[size_t(up_idx_[i])];
    multiply(il, true, up_idx_, xs_.data(), gu_.data(), pool);
    add_gate_up_lora(L, up_idx_.data(), xs_.data(), up_idx_.size(), true);
    bytes += up_idx_.size() * row_bytes(column_type_of(il, true), 2 * F);
    swiglu_simd(gu_.data(), gu_.data() + F, h_.data(), F);
    for (size_t j = 0; j < F; ++j) score_[j] = std::fabs(h_[j]);
    select(il, false, score_.data(), F, keep.down, pos, down_idx_, down_hits_.data(),
           down_slots_.data());
    density =
        (2.0 * double(up_idx_.size()) / double(E) + double(down_idx_.size()) / double(F)) / 3.0;
    up_mask = &up_idx_;
    up_hits = up_hits_.data();
  }
  if (masker_.shape() != MlpShape::kDenseGate) {  // (cats has its down inputs already)
    for (size_t i = 0; i < down_idx_.size(); ++i) xs_[i] = h_[size_t(down_idx_[i])];
  }
  multiply(il, false, down_idx_, xs_.data(), out, pool);
  for (const LoraTensor* t : L.ffn_down.lora)
    lora_add(*t, down_idx_.data(), xs_.data(), down_idx_.size(), out, lora_tmp_);
  bytes += down_idx_.size() * row_bytes(column_type_of(il, false), E);
  stats_.evals++;
  stats_.density_sum += density;
  stats_.bytes += bytes;
  if (trace_) trace_->add_layer(pos, il, *up_mask, down_idx_, up_hits, down_hits_.data());
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace dip
