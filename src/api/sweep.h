// Sweeps over pruning methods x MLP densities (x DIP-CA gammas): the points, checked before any
// run, and the accuracy sweep in DRAM (perplexity, KL and top-1 agreement against dense, the
// achieved density and the modelled cache hit rate; sweep.csv + sweep.json for
// tools/plot_sweep.py). The flash and simulated sweeps are in flash_sweep.h and sim_sweep.h.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/sparsity_setup.h"

namespace dip {

class Model;
struct Thresholds;

struct SweepPoint {
  Method method;
  double density, gamma;  // gamma: DIP-CA's (1 for the other methods)
};

struct SweepPlan {
  std::vector<SweepPoint> points;
  std::vector<std::string> skipped;  // "glu at 0.25": below the method's minimum density
};

// Every method at every density (DIP-CA also at every gamma); dense is left out (the sweeps run
// it as their reference). Bad values and methods that need thresholds without them are errors.
SweepPlan plan_sweep(const std::vector<std::string>& methods, const std::vector<double>& densities,
                     const std::vector<double>& gammas, bool have_thresholds);

// Runs every point over toks in windows of ctx (at most `chunks` windows, 0: all) and writes
// out/sweep.csv (after every point) and out/sweep.json; returns the JSON.
nlohmann::json run_accuracy_sweep(const Model& m, const std::vector<int32_t>& toks,
                                  const SweepPlan& plan, const SparsityOptions& so,
                                  const Thresholds* thr, uint32_t ctx, size_t chunks, int threads,
                                  const std::string& text_name, const std::string& out);

}  // namespace dip
