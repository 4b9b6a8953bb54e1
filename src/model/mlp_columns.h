// A layer's MLP weights in the column ("input-major") layout that pruning reads: the up+gate
// bundles (column i = [gate[:, i]; up[:, i]]) and the down projection's columns. Shared by the
// in-DRAM pruned MLP and the flash image writer.
#pragma once
#include <cstdint>

#include "ops/colsparse.h"

namespace dip {

class Model;

ColumnMatrix up_gate_column_matrix(const Model& m, uint32_t layer);
ColumnMatrix down_column_matrix(const Model& m, uint32_t layer);

}  // namespace dip
