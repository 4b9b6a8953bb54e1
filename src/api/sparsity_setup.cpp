#include "api/sparsity_setup.h"

#include <cmath>
#include <cstdlib>
#include <utility>

#include "model/model.h"
#include "sparsity/masker.h"
#include "util/error.h"
#include "util/number_list.h"

namespace dip {

SparsityConfig make_config(const Model& m, const SparsityOptions& o, Method method,
                           double density) {
  SparsityConfig cfg;
  cfg.method = method;
  cfg.mlp_density = density;
  cfg.gamma = std::isnan(o.gamma) ? SparsityOptions::kDefaultGamma : o.gamma;
  cfg.fixed_top_n = o.fixed_top_n;
  cfg.warmup = o.warmup;
  cfg.alpha_blend = o.alpha_blend;
  cfg.cache_fraction = o.cache_fraction;
  if (!o.mask_block.empty()) {
    // N, or UP,DOWN: the block sizes of the up+gate and the down masks.
    const std::vector<double> b = parse_number_list(o.mask_block, "--mask-block N or UP,DOWN");
    for (double v : b) {
      if (b.size() > 2 || !(v >= 1 && v <= 4096) || v != std::floor(v))
        fail("--mask-block must be in [1, 4096], as N or UP,DOWN (got '{}')", o.mask_block);
    }
    cfg.mask_block_up = uint32_t(b.front());
    cfg.mask_block_down = uint32_t(b.back());
  }
  cfg.policy = parse_cache_policy(o.policy);
  cfg.thresholds_file = o.thresholds;
  const Masker& masker = masker_for(method);
  cfg.use_thresholds = o.threshold_mode || masker.always_thresholds();
  cfg.trace_file = o.trace;
  if (o.threshold_mode && o.thresholds.empty()) fail("--threshold-mode needs --thresholds FILE");
  if (masker.always_thresholds() && o.thresholds.empty()) {
    fail("{} keeps by calibrated thresholds: give --thresholds FILE (from `dip calibrate`)",
         method_name(method));
  }
  if (masker.shape() != MlpShape::kAllColumns && density < 0 && o.up_keep == 0 &&
      o.down_keep == 0 && o.keep_file.empty()) {
    fail("--method {} needs --mlp-density (or --up-keep/--down-keep, or --keep-file)",
         method_name(method));
  }
  validate(cfg);
  resolve_keep(cfg, m.hparams().n_layer, o.up_keep, o.down_keep, o.keep_file);
  return cfg;
}

namespace {
// Flags that mean something only for some methods are errors elsewhere, not silently ignored.
void check_flags_fit_method(const SparsityOptions& o, Method method, bool flash) {
  const Masker& masker = masker_for(method);
  if (masker.shape() == MlpShape::kAllColumns) {
    const std::pair<const char*, bool> density_flags[] = {
        {"--mlp-density", o.mlp_density >= 0},  {"--up-keep", o.up_keep != 0},
        {"--down-keep", o.down_keep != 0},      {"--keep-file", !o.keep_file.empty()},
        {"--threshold-mode", o.threshold_mode}, {"--mask-block", !o.mask_block.empty()}};
    for (const auto& [flag, given] : density_flags) {
      if (given) {
        fail("{} has no effect with --method dense: choose a pruning method (dip, dip-ca, ...)",
             flag);
      }
    }
    if (!o.trace.empty() && !flash)
      fail("--trace records pruning masks: dense runs have none (use --method dip, dip-ca, ...)");
  }
  if (!masker.cache_aware()) {
    const std::pair<const char*, bool> ca_flags[] = {{"--gamma", !std::isnan(o.gamma)},
                                                     {"--fixed-top-n", o.fixed_top_n != 0},
                                                     {"--warmup", o.warmup},
                                                     {"--alpha-blend", o.alpha_blend}};
    for (const auto& [flag, given] : ca_flags) {
      if (given)
        fail("{} applies to --method dip-ca only (this run: {})", flag, method_name(method));
    }
  }
}
}  // namespace

Sparsity make_sparsity(const Model& m, const SparsityOptions& o, FlashColumns* flash) {
  Sparsity s;
  const Method method = parse_method(o.method);
  check_flags_fit_method(o, method, flash != nullptr);
  s.cfg = make_config(m, o, method, o.mlp_density);
  if (masker_for(method).shape() == MlpShape::kAllColumns && !flash) return s;
  if (s.cfg.use_thresholds)
    s.thresholds = std::make_unique<Thresholds>(load_thresholds(o.thresholds, m));
  s.mlp = std::make_unique<SparseMlp>(m, s.cfg, s.thresholds.get(), flash);
  return s;
}

}  // namespace dip
