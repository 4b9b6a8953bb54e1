// The pruning flags shared by generate, perplexity and sweep, and building a SparseMlp from them.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "sparsity/calibration.h"
#include "sparsity/config.h"
#include "sparsity/sparse_mlp.h"

namespace dip::cli {

struct SparsityOpts {
  std::string method = "dense";
  double mlp_density = -1;  // < 0: not given
  double up_keep = 0, down_keep = 0;
  std::string keep_file, thresholds, trace, policy = "lru";
  bool threshold_mode = false;
  double gamma = 0.2;
  uint32_t fixed_top_n = 0;
  bool warmup = false, alpha_blend = false;
  double cache_fraction = 0.5;
  const CLI::App* app = nullptr;  // the command they were parsed for: which flags were given
};

// with_method false: sweep gives methods and densities its own way.
void add_sparsity_opts(CLI::App* c, SparsityOpts& o, bool with_method);

struct Sparsity {
  SparsityConfig cfg;
  std::unique_ptr<Thresholds> thresholds;
  std::unique_ptr<SparseMlp> mlp;  // null for dense
};

// Validates the flags (clear errors) and builds the pruned MLP for model m; with `flash`, its
// columns come from the flash image (then dense also gets an MLP: dense streaming).
Sparsity make_sparsity(const Model& m, const SparsityOpts& o, FlashColumns* flash = nullptr);
// The config alone (for sweeps that vary method and density over one options set).
SparsityConfig make_config(const Model& m, const SparsityOpts& o, Method method, double density);

}  // namespace dip::cli
