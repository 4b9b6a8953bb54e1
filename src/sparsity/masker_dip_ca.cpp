// dip-ca: DIP whose scores are first rescored against the column cache: an uncached column's
// score is scaled by gamma (or blended, --alpha-blend; gamma warmed up over the first tokens,
// --warmup; the fixed_top_n largest never scaled), so cached columns win near-ties.
#include "sparsity/masker_list.h"
#include "sparsity/select.h"

namespace dip {

class DipCaMasker final : public Masker {
 public:
  Method id() const override { return Method::kDipCa; }
  const char* name() const override { return "dip-ca"; }
  MlpShape shape() const override { return MlpShape::kInputColumns; }
  LayerKeep split(double density) const override { return dip_optimized_split(density); }
  bool cache_aware() const override { return true; }
  void rescore(float* score, size_t n, const uint8_t* cached, const SparsityConfig& cfg,
               uint32_t pos, std::vector<float>& scratch) const override {
    const double g = cfg.warmup ? warmup_gamma(cfg.gamma, pos) : cfg.gamma;
    cache_aware_scores(score, n, cached, g, cfg.fixed_top_n, cfg.alpha_blend, scratch);
  }
};

const Masker& dip_ca_masker() {
  static const DipCaMasker m;
  return m;
}

}  // namespace dip
