// A layer's MLP weights in the column ("input-major") layout that pruning reads: the up+gate
// bundles (column i = [gate[:, i]; up[:, i]]) and the down projection's columns. Shared by the
// in-DRAM pruned MLP and the flash image writer.
#pragma once
#include <cstdint>

#include "ops/colsparse.h"
#include "ops/tensor_types.h"

namespace dip {

class Model;

// The type a matrix of `weight_type` has in the column layout: its own, except K-quants, whose
// super-blocks run along the inputs and cannot be cut into columns: they are requantized along
// the columns from their decoded values, Q4_K and Q5_K to Q4_0 (the same 4.5 bits per weight),
// Q6_K to Q8_0. docs/engine.md gives the perplexity this costs.
TensorType column_type(TensorType weight_type);

// The one column type a model's up+gate bundles (up = true) or down columns have in every layer
// of a flash image (one column size per matrix kind). Layers whose column types differ only as
// Q4_0 and Q8_0 (llama.cpp's mixes: Q4_K_M's Q6_K down projections among Q4_K ones) all take
// Q4_0, the smaller; any other mix is an error naming the layer.
TensorType model_column_type(const Model& m, bool up);

// The column type of layer `layer`'s up+gate bundles (up = true) or down columns: the layer's
// own (column_type), or with `uniform` the model's (model_column_type).
TensorType layer_column_type(const Model& m, uint32_t layer, bool up, bool uniform);

// Layer `layer`'s up+gate bundles and down columns in column type `col_type` (its own or the
// model's: layer_column_type).
ColumnMatrix up_gate_column_matrix(const Model& m, uint32_t layer, TensorType col_type);
ColumnMatrix down_column_matrix(const Model& m, uint32_t layer, TensorType col_type);

}  // namespace dip
