#include "model/mlp_columns.h"

#include "model/model.h"
#include "util/error.h"

namespace dip {

TensorType column_type(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
      return TensorType::Q4_0;
    case TensorType::Q6_K:
      return TensorType::Q8_0;
    default:
      return weight_type;
  }
}

ColumnMatrix up_gate_column_matrix(const Model& m, uint32_t l) {
  const size_t E = m.hparams().n_embd, F = m.hparams().n_ff;
  const Layer& L = m.layers[l];
  const TensorType ct = column_type(L.ffn_up.type);
  if (L.fused_gate_up()) return make_column_matrix(L.ffn_up.type, {L.ffn_up.data}, 2 * F, E, ct);
  if (L.ffn_gate.type != L.ffn_up.type)
    fail("{}: layer {}: gate and up weights of different types ({} and {}) are not supported",
         m.path(), l, ggml_type_name(uint32_t(L.ffn_gate.type)),
         ggml_type_name(uint32_t(L.ffn_up.type)));
  return make_column_matrix(L.ffn_up.type, {L.ffn_gate.data, L.ffn_up.data}, F, E, ct);
}

ColumnMatrix down_column_matrix(const Model& m, uint32_t l) {
  const Layer& L = m.layers[l];
  return make_column_matrix(L.ffn_down.type, {L.ffn_down.data}, m.hparams().n_embd,
                            m.hparams().n_ff, column_type(L.ffn_down.type));
}

}  // namespace dip
