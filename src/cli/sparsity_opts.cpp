#include "cli/sparsity_opts.h"

#include <cstdlib>

#include "model/model.h"
#include "sparsity/masker.h"
#include "util/error.h"

namespace dip::cli {

void add_sparsity_opts(CLI::App* c, SparsityOpts& o, bool with_method) {
  o.app = c;
  if (with_method) {
    c->add_option("--method", o.method, "MLP pruning: dense, dip, dip-ca, glu, cats, teal");
    c->add_option("--mlp-density", o.mlp_density,
                  "target MLP density in (0, 1] (DIP: split by the optimized formula)")
        ->check([](const std::string& s) -> std::string {
          char* end = nullptr;
          const double v = std::strtod(s.c_str(), &end);
          return end != s.c_str() && *end == 0 && v > 0 && v <= 1
                     ? ""
                     : "--mlp-density must be in (0, 1]";
        });
    c->add_option("--up-keep", o.up_keep, "fraction of up/gate columns kept (with --down-keep)");
    c->add_option("--down-keep", o.down_keep, "fraction of down columns kept (with --up-keep)");
    c->add_option("--keep-file", o.keep_file,
                  "per-layer keep fractions (JSON: {\"layers\": [{\"up\":u,\"down\":d}, ...]})");
    c->add_option("--trace", o.trace, "write the per-token masks (and cache hits) to this file");
  }
  c->add_option("--thresholds", o.thresholds,
                "calibrated thresholds (from `dip calibrate`): cats, teal, dip --threshold-mode");
  c->add_flag("--threshold-mode", o.threshold_mode,
              "dip/dip-ca: keep by calibrated thresholds instead of per-token top-k");
  if (with_method)
    c->add_option("--gamma", o.gamma, "dip-ca: weight of uncached columns' scores, in [0, 1]");
  c->add_option("--fixed-top-n", o.fixed_top_n,
                "dip-ca: the n largest scores are never down-weighted");
  c->add_flag("--warmup", o.warmup, "dip-ca: gamma_t = 1 - (1-gamma)(1 - gamma^(t/4))");
  c->add_flag("--alpha-blend", o.alpha_blend, "dip-ca: s' = gamma*s + (1-gamma)*[cached]");
  c->add_option("--cache-fraction", o.cache_fraction,
                "modelled column cache per matrix, fraction of its columns, in [0, 1]");
  c->add_option("--cache-policy", o.policy, "modelled cache eviction: lru, lfu");
}

SparsityConfig make_config(const Model& m, const SparsityOpts& o, Method method, double density) {
  SparsityConfig cfg;
  cfg.method = method;
  cfg.mlp_density = density;
  cfg.gamma = o.gamma;
  cfg.fixed_top_n = o.fixed_top_n;
  cfg.warmup = o.warmup;
  cfg.alpha_blend = o.alpha_blend;
  cfg.cache_fraction = o.cache_fraction;
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
void check_flags_fit_method(const SparsityOpts& o, Method method, bool flash) {
  if (!o.app) return;
  auto given = [&](const char* flag) { return o.app->count(flag) > 0; };
  const Masker& masker = masker_for(method);
  if (masker.shape() == MlpShape::kAllColumns) {
    for (const char* f :
         {"--mlp-density", "--up-keep", "--down-keep", "--keep-file", "--threshold-mode"}) {
      if (given(f))
        fail("{} has no effect with --method dense: choose a pruning method (dip, dip-ca, ...)", f);
    }
    if (given("--trace") && !flash)
      fail("--trace records pruning masks: dense runs have none (use --method dip, dip-ca, ...)");
  }
  if (!masker.cache_aware()) {
    for (const char* f : {"--gamma", "--fixed-top-n", "--warmup", "--alpha-blend"}) {
      if (given(f))
        fail("{} applies to --method dip-ca only (this run: {})", f, method_name(method));
    }
  }
}
}  // namespace

Sparsity make_sparsity(const Model& m, const SparsityOpts& o, FlashColumns* flash) {
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

}  // namespace dip::cli
