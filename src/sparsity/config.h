// What a run prunes: the method (docs/method.md names each), its keep fractions
// per layer, DIP-CA's parameters and the modelled column cache.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cache/cache_policy.h"

namespace dip {

enum class Method : uint32_t { kDense = 0, kDip = 1, kDipCa = 2, kGlu = 3, kCats = 4, kTeal = 5 };

Method parse_method(const std::string& name);
const char* method_name(Method m);

// Fractions of columns kept per layer: `up` of the MLP inputs (up+gate columns), `down` of the
// d_ff columns of the down projection (for CATS: of the neurons, i.e. up rows and down columns).
struct LayerKeep {
  double up = 1.0, down = 1.0;
};

struct SparsityConfig {
  Method method = Method::kDense;
  double mlp_density = 1.0;     // the target; LayerKeep values derive from it unless given
  std::vector<LayerKeep> keep;  // one per layer (filled by resolve_keep)
  bool use_thresholds = false;  // keep by calibrated thresholds instead of per-token top-k
  std::string thresholds_file;
  // DIP-CA (method.md): s'_i = s_i if cached or among the fixed_top_n largest, else gamma * s_i.
  double gamma = 0.2;
  uint32_t fixed_top_n = 0;
  bool warmup = false;       // gamma_t = 1 - (1 - gamma)(1 - gamma^(t/4))
  bool alpha_blend = false;  // s' = gamma * s + (1 - gamma) * [cached]
  // The modelled per-layer column cache (all-in-DRAM runs): capacity as a fraction of each
  // matrix's columns, and its eviction policy.
  double cache_fraction = 0.5;
  CachePolicy policy = CachePolicy::kLru;
  // Explicit capacities in columns (per up/gate and per down matrix), overriding cache_fraction
  // when not negative: a simulated sweep sizes the modelled cache exactly as the simulator's
  // footprint does.
  int64_t up_cache_columns = -1, down_cache_columns = -1;
  // Top-k over groups of this many adjacent columns (mean score) instead of single columns, for
  // the up+gate (input) and the down (neuron) masks: a pruned token's misses become runs that
  // one flash request reads (select_topk_blocks). 1: single columns.
  uint32_t mask_block_up = 1, mask_block_down = 1;
  std::string trace_file;  // empty: no trace
  // In-DRAM runs: one column type per matrix kind in every layer (model_column_type), as a flash
  // image has, so that they compute what a flash run does on mixed files such as Q4_K_M (whose
  // Q6_K down projections then take Q4_0 columns). Off: each layer's own column type, the more
  // accurate. Flash runs always have the image's types.
  bool uniform_column_types = false;
};

// Whether a method masks the MLP inputs (reads up+gate by column: dip, dip-ca, teal) rather
// than computing the gate densely from rows (glu, cats).
bool reads_up_columns(Method m);

// DIP's "optimized" split of one MLP density into up/gate and down keep fractions.
LayerKeep dip_optimized_split(double mlp_density);

// Fills cfg.keep for n_layer layers from: explicit up/down keep (both > 0), a per-layer JSON file
// ({"layers": [{"up": u, "down": d}, ...]}), or cfg.mlp_density with the method's rule. Fails
// with a clear message for values outside (0, 1] and densities a method cannot reach.
void resolve_keep(SparsityConfig& cfg, uint32_t n_layer, double up_keep, double down_keep,
                  const std::string& keep_file);

// The MLP density a layer reaches with the given kept fractions (gated MLP, 3 matrices).
double mlp_density_of(Method m, const LayerKeep& k);

// Range checks of the DIP-CA and cache parameters (clear errors).
void validate(const SparsityConfig& cfg);

}  // namespace dip
