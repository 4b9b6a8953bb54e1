// The co-activation layout of a model's flash image (flash/flash_layout.h), learned from the
// masks DIP makes on a calibration text: per layer, the up+gate bundles kept for the same tokens
// and the down columns kept for the same tokens are placed side by side.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "flash/flash_image.h"

namespace dip {

class Model;

struct CoactivationLayout {
  ColumnSlots slots;
  // Per layer, the share of a token's kept columns whose left neighbour in the file is kept too,
  // on the calibration text: in model order and in the new layout (flash_layout.h: adjacency).
  std::vector<double> up_before, up_after, down_before, down_after;
};

// Runs the dense model over tokens in windows of n_ctx and records, per token and layer, the
// columns DIP keeps at MLP density `density` (top-k of |x| for up+gate, of |h| for down), then
// orders each matrix's columns by co-activation. progress(done, total) counts the windows and
// then the layers.
CoactivationLayout coactivation_layout(const Model& m, const std::vector<int32_t>& tokens,
                                       uint32_t n_ctx, double density, int threads,
                                       const std::function<void(size_t, size_t)>& progress);

}  // namespace dip
