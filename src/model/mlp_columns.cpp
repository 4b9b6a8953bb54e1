#include "model/mlp_columns.h"

#include "model/model.h"
#include "util/error.h"

namespace dip {

ColumnMatrix up_gate_column_matrix(const Model& m, uint32_t l) {
  const size_t E = m.hparams().n_embd, F = m.hparams().n_ff;
  const Layer& L = m.layers[l];
  if (L.fused_gate_up())
    return make_column_matrix(L.ffn_up.type, {L.ffn_up.data}, 2 * F, E, L.ffn_up.type);
  if (L.ffn_gate.type != L.ffn_up.type)
    fail("layer {}: gate and up weights of different types are not supported", l);
  return make_column_matrix(L.ffn_up.type, {L.ffn_gate.data, L.ffn_up.data}, F, E, L.ffn_up.type);
}

ColumnMatrix down_column_matrix(const Model& m, uint32_t l) {
  const Layer& L = m.layers[l];
  return make_column_matrix(L.ffn_down.type, {L.ffn_down.data}, m.hparams().n_embd,
                            m.hparams().n_ff, L.ffn_down.type);
}

}  // namespace dip
