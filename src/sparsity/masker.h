// One pruning method: its name, what of the MLP it computes densely, how it turns a target MLP
// density into keep fractions, and what it does to a token's scores before the columns are
// chosen. One small type per method (masker_<name>.cpp), found by name or id through the
// registry (masker_registry.cpp): adding a method is one new file plus one line there. The
// pruned MLP and the command line ask a method these questions instead of switching over it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparsity/calibration.h"
#include "sparsity/config.h"

namespace dip {

// How a method's MLP runs.
enum class MlpShape {
  kAllColumns,    // every column (dense; from flash: dense streaming)
  kInputColumns,  // up+gate columns of the kept inputs, down columns of the kept neurons
  kDenseGateUp,   // gate and up dense from the row-major weights, down columns of kept neurons
  kDenseGate,     // gate dense; the kept neurons' up rows and down columns
};

class Masker {
 public:
  virtual ~Masker() = default;
  virtual Method id() const = 0;  // stored in trace files
  virtual const char* name() const = 0;
  virtual MlpShape shape() const = 0;
  // The lowest MLP density the method reaches (what it computes densely).
  virtual double min_density() const { return 0.0; }
  // Keep fractions for a target density in [min_density(), 1]; fails below it.
  virtual LayerKeep split(double density) const = 0;
  // The MLP density (of the three matrices' bytes) a layer reaches with keep fractions k.
  virtual double density_of(const LayerKeep& k) const { return (2.0 * k.up + k.down) / 3.0; }
  // Keeps by calibrated thresholds always (not only with --threshold-mode).
  virtual bool always_thresholds() const { return false; }
  // The calibrated signal whose threshold chooses the up+gate (up) or down columns.
  virtual Signal threshold_signal(bool up) const { return up ? Signal::kX : Signal::kH; }
  // True for DIP-CA: the cache steers the choice, and --gamma and its companions apply.
  virtual bool cache_aware() const { return false; }
  // Rescores a token's scores against the cache's current contents before the selection.
  virtual void rescore(float* /*score*/, size_t /*n*/, const uint8_t* /*cached*/,
                       const SparsityConfig& /*cfg*/, uint32_t /*pos*/,
                       std::vector<float>& /*scratch*/) const {}

  bool masks_inputs() const { return shape() == MlpShape::kInputColumns; }
  // Whether every column it reads is a column of the flash image (dense rows are not).
  bool runs_from_flash() const { return shape() == MlpShape::kAllColumns || masks_inputs(); }
};

const Masker& masker_for(Method m);
// Fails with the list of names when `name` is none of them.
const Masker& masker_named(const std::string& name);
// "dense, dip, dip-ca, ..." in registry order.
std::string masker_names();

}  // namespace dip
