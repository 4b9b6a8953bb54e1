#include "sparsity/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sparsity/masker.h"
#include "util/error.h"

namespace dip {

namespace {
void check_fraction(const char* what, double v) {
  if (!(v > 0.0 && v <= 1.0)) fail("{} must be in (0, 1] (got {})", what, v);
}
}  // namespace

Method parse_method(const std::string& name) { return masker_named(name).id(); }

const char* method_name(Method m) { return masker_for(m).name(); }

bool reads_up_columns(Method m) { return masker_for(m).masks_inputs(); }

LayerKeep dip_optimized_split(double keep) {
  if (keep >= 1.0) return {1.0, 1.0};
  const double logit = std::log(keep / (1.0 - keep));
  const double up = 1.0 / (1.0 + std::exp(-(0.98499 * logit + 0.29976)));
  const double down = 3.0 * (keep - 2.0 / 3.0 * up);
  return {up, std::clamp(down, 1e-6, 1.0)};
}

double mlp_density_of(Method m, const LayerKeep& k) { return masker_for(m).density_of(k); }

void resolve_keep(SparsityConfig& cfg, uint32_t n_layer, double up_keep, double down_keep,
                  const std::string& keep_file) {
  cfg.keep.assign(n_layer, LayerKeep{});
  const Masker& masker = masker_for(cfg.method);
  if (masker.shape() == MlpShape::kAllColumns) return;
  if (!keep_file.empty()) {
    std::ifstream in(keep_file);
    if (!in) fail("{}: cannot open the per-layer keep file", keep_file);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      fail("{}: not valid JSON ({})", keep_file, e.what());
    }
    if (!j.contains("layers") || !j["layers"].is_array())
      fail("{}: no \"layers\" array", keep_file);
    if (j["layers"].size() != n_layer) {
      fail("{}: {} layers given, the model has {}", keep_file, j["layers"].size(), n_layer);
    }
    for (uint32_t l = 0; l < n_layer; ++l) {
      const auto& e = j["layers"][l];
      if (!e.is_object() || !e.contains("up") || !e.contains("down") || !e["up"].is_number() ||
          !e["down"].is_number()) {
        fail("{}: layer {} needs numbers \"up\" and \"down\"", keep_file, l);
      }
      cfg.keep[l] = {e["up"].get<double>(), e["down"].get<double>()};
      check_fraction("a per-layer keep fraction", cfg.keep[l].up);
      check_fraction("a per-layer keep fraction", cfg.keep[l].down);
    }
  } else if (up_keep > 0 || down_keep > 0) {
    if (!(up_keep > 0 && down_keep > 0)) fail("--up-keep and --down-keep go together");
    check_fraction("--up-keep", up_keep);
    check_fraction("--down-keep", down_keep);
    cfg.keep.assign(n_layer, LayerKeep{up_keep, down_keep});
  } else {
    const double d = cfg.mlp_density;
    check_fraction("--mlp-density", d);
    const LayerKeep k = masker.split(d);
    cfg.keep.assign(n_layer, k);
  }
  if (!masker.masks_inputs()) {  // its inputs are read in full whatever a keep file says
    for (auto& k : cfg.keep) k.up = 1.0;
  }
  double sum = 0;
  for (const auto& k : cfg.keep) sum += mlp_density_of(cfg.method, k);
  cfg.mlp_density = sum / n_layer;
}

void validate(const SparsityConfig& cfg) {
  if (!(cfg.gamma >= 0.0 && cfg.gamma <= 1.0))
    fail("--gamma must be in [0, 1] (got {})", cfg.gamma);
  if (!(cfg.cache_fraction >= 0.0 && cfg.cache_fraction <= 1.0)) {
    fail("--cache-fraction must be in [0, 1] (got {})", cfg.cache_fraction);
  }
  for (uint32_t b : {cfg.mask_block_up, cfg.mask_block_down}) {
    if (b < 1 || b > 4096) fail("--mask-block must be in [1, 4096] (got {})", b);
  }
  if ((cfg.mask_block_up > 1 || cfg.mask_block_down > 1) && cfg.use_thresholds)
    fail("--mask-block groups per-token top-k masks: it does not apply to threshold masks");
}

}  // namespace dip
