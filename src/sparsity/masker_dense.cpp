// dense: every column (with the MLP on flash, dense streaming through the cache).
#include "sparsity/masker_list.h"

namespace dip {

class DenseMasker final : public Masker {
 public:
  Method id() const override { return Method::kDense; }
  const char* name() const override { return "dense"; }
  MlpShape shape() const override { return MlpShape::kAllColumns; }
  double min_density() const override { return 1.0; }
  LayerKeep split(double) const override { return {1.0, 1.0}; }
  double density_of(const LayerKeep&) const override { return 1.0; }
};

const Masker& dense_masker() {
  static const DenseMasker m;
  return m;
}

}  // namespace dip
