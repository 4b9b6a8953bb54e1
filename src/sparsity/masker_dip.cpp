// dip: top-k of |x| chooses the up+gate columns, top-k of |h| the down columns; one MLP density
// is split between them by the optimized formula (more of x than of h is kept).
#include "sparsity/masker_list.h"

namespace dip {

class DipMasker final : public Masker {
 public:
  Method id() const override { return Method::kDip; }
  const char* name() const override { return "dip"; }
  MlpShape shape() const override { return MlpShape::kInputColumns; }
  LayerKeep split(double density) const override { return dip_optimized_split(density); }
};

const Masker& dip_masker() {
  static const DipMasker m;
  return m;
}

}  // namespace dip
