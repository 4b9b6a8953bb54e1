// cats: the gate dense; a calibrated threshold on |silu(gate x)| chooses the neurons, whose up
// rows and down columns are the only ones read (MLP density >= 1/3).
#include <algorithm>

#include "sparsity/masker_list.h"
#include "util/error.h"

namespace dip {

class CatsMasker final : public Masker {
 public:
  Method id() const override { return Method::kCats; }
  const char* name() const override { return "cats"; }
  MlpShape shape() const override { return MlpShape::kDenseGate; }
  double min_density() const override { return 1.0 / 3.0; }
  LayerKeep split(double d) const override {
    if (d < min_density())
      fail("cats computes the gate densely: MLP density {} is below its minimum 1/3", d);
    return {1.0, std::max(1e-6, (3.0 * d - 1.0) / 2.0)};
  }
  // Gate dense; up rows and down columns per kept neuron.
  double density_of(const LayerKeep& k) const override { return (1.0 + 2.0 * k.down) / 3.0; }
  bool always_thresholds() const override { return true; }
  Signal threshold_signal(bool) const override { return Signal::kGate; }
};

const Masker& cats_masker() {
  static const CatsMasker m;
  return m;
}

}  // namespace dip
