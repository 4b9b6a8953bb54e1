// `dip sweep --simulate`: what a device with DRAM + flash gains from each pruning method, at what
// accuracy cost. Every point (method x density x DIP-CA gamma) runs in the engine over the text
// (perplexity, KL, top-1 against dense) recording its mask trace; the simulator then replays each
// trace at every DRAM size and flash speed of the grid. DIP-CA's masks depend on what is cached,
// so its points run once per DRAM size, against a modelled cache of exactly the columns the
// simulator gives that size. Writes simulate.csv and simulate.json (accuracy, simulated rows, and
// the comparisons against dense streaming of sim/sweep_summary.h) for tools/plot_sim.py. With
// --sim-shape, a shape-only projection (SimSweepOptions::shape).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/sparsity_setup.h"
#include "api/sweep.h"

namespace dip {

class Model;
struct Thresholds;

struct SimSweepOptions {
  bool enabled = false;
  std::string device = "a18";
  std::string dram_sizes =
      "25%,50%,75%,100%";  // "N%": the static part + N% of the MLP; or sizes (300MiB)
  std::string flash_bws;   // empty: the device's
  double bits = 16;
  std::string policy = "lru";
  std::string budgets = "2,10";  // relative perplexity increases (%) for the comparisons
  bool keep_traces = false;
  // A shape-only projection onto another model shape (a preset of `dip simulate --shape`): the
  // accuracy of each point is the engine's on this model, the masks are synthetic for that shape
  // (DIP's split of the point's density, popularity skew, DIP-CA against the live simulated cache).
  std::string shape;
  uint32_t tokens = 128;
  double skew = 1.0;
  std::string accuracy;  // a simulate.json of this model to take the points' accuracy from
};

// Returns simulate.json's content (its "comparisons" are the headline table).
nlohmann::json run_sim_sweep(const Model& m, const std::vector<int32_t>& toks,
                             const std::vector<SweepPoint>& points, const SimSweepOptions& sim,
                             const SparsityOptions& so, const Thresholds* thr, uint32_t ctx,
                             size_t chunks, int threads, const std::string& out);

}  // namespace dip
