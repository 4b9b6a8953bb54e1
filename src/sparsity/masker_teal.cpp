// teal: calibrated thresholds on the inputs of every MLP projection, the same sparsity for each.
#include "sparsity/masker_list.h"

namespace dip {

class TealMasker final : public Masker {
 public:
  Method id() const override { return Method::kTeal; }
  const char* name() const override { return "teal"; }
  MlpShape shape() const override { return MlpShape::kInputColumns; }
  LayerKeep split(double density) const override { return {density, density}; }
  bool always_thresholds() const override { return true; }
};

const Masker& teal_masker() {
  static const TealMasker m;
  return m;
}

}  // namespace dip
