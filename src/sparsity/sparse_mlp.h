// The pruned MLP of one token: a masker (sparsity/config.h names the methods) choosing which
// columns to use, and column-sparse kernels that read and multiply only those. Holds the
// column-major copies of the MLP weights, the modelled per-layer column caches, run statistics
// and the optional mask trace.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "cache/column_cache.h"
#include "model/mlp_columns.h"
#include "model/mlp_hook.h"
#include "ops/colsparse.h"
#include "ops/matvec.h"
#include "sparsity/calibration.h"
#include "sparsity/config.h"
#include "sparsity/masker.h"
#include "sparsity/trace.h"

namespace dip {

class Model;
struct Layer;
class ThreadPool;
class FlashColumns;

struct MlpStats {
  uint64_t evals = 0;      // token x layer evaluations
  double density_sum = 0;  // achieved MLP density, summed over evals
  uint64_t bytes = 0;      // MLP weight bytes read
  uint64_t up_hits = 0, up_accesses = 0, down_hits = 0, down_accesses = 0;
  uint64_t prefetched = 0,
           prefetch_used = 0;  // bundles read ahead; of those, hits of the real mask
  double seconds = 0;          // wall time inside the MLP (flash waits included)
  double density() const { return evals ? density_sum / double(evals) : 1.0; }
  double up_hit_rate() const { return up_accesses ? double(up_hits) / double(up_accesses) : 0.0; }
  double down_hit_rate() const {
    return down_accesses ? double(down_hits) / double(down_accesses) : 0.0;
  }
  // Hit rate over all masked columns, each weighted by its bytes is for the flash store; here
  // counted per matrix: up+gate bundles count twice (two matrices share the mask).
  double hit_rate() const {
    const double a = 2.0 * double(up_accesses) + double(down_accesses);
    return a > 0 ? (2.0 * double(up_hits) + double(down_hits)) / a : 0.0;
  }
};

class SparseMlp : public MlpHook {
 public:
  // thresholds: required for threshold modes (cats, teal, dip with use_thresholds); may be null.
  // flash: the MLP columns live in a flash image and a DRAM cache of the capacities it has
  // (the method's column caches are those, cfg.cache_fraction is not used); dense then reads
  // every column through the cache (dense streaming). Null: column-major copies in DRAM.
  SparseMlp(const Model& m, const SparsityConfig& cfg, const Thresholds* thresholds,
            FlashColumns* flash = nullptr);
  ~SparseMlp() override;

  bool active() const override {
    return masker_.shape() != MlpShape::kAllColumns || flash_ != nullptr;
  }
  FlashColumns* flash() const { return flash_; }
  const SparsityConfig& config() const { return cfg_; }
  // out = MLP(x) for one token of layer `layer` at sequence position `pos` (x and out may alias).
  void forward(uint32_t layer, const float* x, float* out, uint32_t pos, ThreadPool& pool) override;

  // Flash runs with prefetch enabled (dip and dip-ca by top-k, dense streaming): predicts layer
  // `layer`'s up+gate mask from the residual stream before it (x_resid, the input of the
  // layer's attention: its MLP input will be that plus the attention's output, normalized), and
  // starts reading the predicted bundles the cache lacks into cache slots, so the reads overlap
  // the layer's attention. A no-op otherwise.
  void prefetch_next(uint32_t layer, const float* x_resid, uint32_t pos) override;

  const MlpStats& stats() const { return stats_; }
  // The scores the last forward() ranked for its down columns (|h|, after DIP-CA rescoring), the
  // first n_ff entries: tests use them to tell a near-tie at the top-k boundary.
  const std::vector<float>& last_down_scores() const { return score_; }
  void reset_stats() { stats_ = {}; }
  // Bytes of the column-major weight copies this object holds.
  uint64_t column_bytes() const;
  // MLP weight bytes of a dense token (all three matrices, all layers).
  uint64_t dense_bytes_per_token() const { return dense_bytes_; }
  void finish_trace();
  // Drops the pages of the row-major MLP weights this method no longer reads (DIP, DIP-CA and
  // TEAL: all three matrices; GLU and CATS: down) from the process's memory, so a pruned run
  // does not hold the MLP twice. They stay correct to read (the file mapping faults them back
  // in, e.g. for a dense reference pass), only slower the first time.
  void release_row_major_weights() const;

 private:
  struct LayerState {
    ColumnMatrix up_gate;  // columns = MLP inputs, each [gate col; up col] (dip, dip-ca, teal)
    ColumnMatrix down;     // columns = d_ff neurons
    ColumnCache up_cache, down_cache;
    std::vector<uint8_t> prefetched;  // flash: 1 for the bundles of the last prefetch (pf_list)
    std::vector<int32_t> pf_list;
    // flash runs with --mask-block on an image in a co-activation layout: the columns in the
    // order the image stores them (blocks are runs of the file); empty: model order.
    std::vector<uint32_t> file_order_up, file_order_down;
  };
  // The column type of layer `il`'s up+gate bundles (up) or down columns: the flash image's, or
  // the in-DRAM column matrix's.
  TensorType column_type_of(uint32_t il, bool up) const;
  // The method's mask over `score` (rescored in place for DIP-CA against the cache as it is).
  void choose_mask(uint32_t layer, bool up, float* score, size_t n, double keep, uint32_t pos,
                   std::vector<int32_t>& idx);
  const uint32_t* file_order(uint32_t layer, bool up) const;
  // choose_mask, then the cache access (hits, slots, the counts).
  void select(uint32_t layer, bool up, float* score, size_t n, double keep, uint32_t pos,
              std::vector<int32_t>& idx, uint8_t* hits, int32_t* slots);
  // y = W[:, idx] xs over the layer's up+gate bundles (up) or down columns, from DRAM or flash.
  void multiply(uint32_t layer, bool up, const std::vector<int32_t>& idx, const float* xs, float* y,
                ThreadPool& pool);

  // gu_ += the gate (and with_up, up) adapters' updates of the n inputs xs = x[idx] (idx null:
  // all inputs).
  void add_gate_up_lora(const Layer& L, const int32_t* idx, const float* xs, size_t n,
                        bool with_up);

  const Model& model_;
  SparsityConfig cfg_;
  const Masker& masker_;  // cfg_.method's
  const Thresholds* thr_;
  FlashColumns* flash_;
  std::vector<LayerState> layers_;
  std::unique_ptr<TraceWriter> trace_;
  MlpStats stats_;
  uint64_t dense_bytes_ = 0;
  // scratch
  std::vector<float> lora_tmp_;
  std::vector<float> x_, score_, gu_, h_, xs_, sel_scratch_, ones_;
  std::vector<uint32_t> topk_scratch_;
  std::vector<float> block_score_;
  std::vector<int32_t> block_idx_;
  std::vector<int32_t> up_idx_, down_idx_, all_up_, all_down_;
  std::vector<uint8_t> up_hits_, down_hits_;
  std::vector<int32_t> up_slots_, down_slots_;
  std::vector<float> pf_x_;
  std::vector<int32_t> pf_idx_, pf_cols_, pf_slots_;
  EncodedActs enc_;
};

}  // namespace dip
