// glu: gate and up dense, top-k of |h| chooses the down columns (MLP density >= 2/3).
#include <algorithm>

#include "sparsity/masker_list.h"
#include "util/error.h"

namespace dip {

class GluMasker final : public Masker {
 public:
  Method id() const override { return Method::kGlu; }
  const char* name() const override { return "glu"; }
  MlpShape shape() const override { return MlpShape::kDenseGateUp; }
  double min_density() const override { return 2.0 / 3.0; }
  LayerKeep split(double d) const override {
    if (d < min_density())
      fail("glu keeps up and gate dense: MLP density {} is below its minimum 2/3", d);
    return {1.0, std::max(1e-6, 3.0 * d - 2.0)};
  }
  double density_of(const LayerKeep& k) const override { return (2.0 + k.down) / 3.0; }
};

const Masker& glu_masker() {
  static const GluMasker m;
  return m;
}

}  // namespace dip
