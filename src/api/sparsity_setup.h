// What a run prunes and how (the options behind --method, --mlp-density, ...), checked and
// turned into a SparsityConfig and a SparseMlp.
#pragma once
#include <cmath>
#include <memory>
#include <string>

#include "sparsity/calibration.h"
#include "sparsity/config.h"
#include "sparsity/sparse_mlp.h"

namespace dip {

// Unset values (the defaults below) mean "not given": an option given for a method it does not
// apply to is an error naming it by its command-line flag, never silently ignored.
struct SparsityOptions {
  std::string method = "dense";  // dense, dip, dip-ca, glu, cats, teal (sparsity/masker_list.h)
  double mlp_density = -1;       // --mlp-density in (0, 1]; < 0: not given
  double up_keep = 0, down_keep = 0;  // --up-keep/--down-keep instead of a density; 0: not given
  std::string keep_file;              // --keep-file: per-layer keep fractions (JSON)
  std::string thresholds;             // --thresholds: from `dip calibrate`
  std::string trace;                  // --trace: write the per-token masks here
  std::string policy = "lru";         // --cache-policy of the modelled cache: lru, lfu
  bool threshold_mode = false;        // --threshold-mode (dip, dip-ca)
  double gamma = NAN;                 // --gamma (dip-ca); NaN: not given (0.2)
  uint32_t fixed_top_n = 0;           // --fixed-top-n (dip-ca)
  bool warmup = false, alpha_blend = false;  // --warmup, --alpha-blend (dip-ca)
  double cache_fraction = 0.5;               // --cache-fraction of the modelled cache
  std::string mask_block;                    // --mask-block N or UP,DOWN; empty: not given
  // --kl-to-base: KL and top-1 of a pruned run against the model without its adapters (how
  // recovery adapters are judged), not against the dense model with them.
  bool reference_without_lora = false;
  static constexpr double kDefaultGamma = 0.2;
};

struct Sparsity {
  SparsityConfig cfg;
  std::unique_ptr<Thresholds> thresholds;
  std::unique_ptr<SparseMlp> mlp;  // null for dense
};

// Validates the flags (clear errors) and builds the pruned MLP for model m; with `flash`, its
// columns come from the flash image (then dense also gets an MLP: dense streaming).
Sparsity make_sparsity(const Model& m, const SparsityOptions& o, FlashColumns* flash = nullptr);
// The config alone (for sweeps that vary method and density over one options set).
SparsityConfig make_config(const Model& m, const SparsityOptions& o, Method method, double density);

}  // namespace dip
