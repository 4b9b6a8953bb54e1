#include "model/mlp_columns.h"

#include "model/model.h"
#include "util/error.h"

namespace dip {

namespace {

// K-quant super-blocks run along a row (the inputs) and cannot be cut into columns.
void require_column_type(const Model& m, uint32_t l, const char* tensor, TensorType t) {
  if (is_k_quant(t)) {
    fail(
        "{}: blk.{}.{} is {}, which pruned and flash runs cannot lay out in columns (F32, F16, "
        "BF16, Q8_0 and Q4_0 can): run it dense, or convert the model with `dip convert --type "
        "q8_0`",
        m.path(), l, tensor, ggml_type_name(uint32_t(t)));
  }
}

}  // namespace

ColumnMatrix up_gate_column_matrix(const Model& m, uint32_t l) {
  const size_t E = m.hparams().n_embd, F = m.hparams().n_ff;
  const Layer& L = m.layers[l];
  if (!L.fused_gate_up()) require_column_type(m, l, "ffn_gate.weight", L.ffn_gate.type);
  require_column_type(m, l, "ffn_up.weight", L.ffn_up.type);
  if (L.fused_gate_up())
    return make_column_matrix(L.ffn_up.type, {L.ffn_up.data}, 2 * F, E, L.ffn_up.type);
  if (L.ffn_gate.type != L.ffn_up.type)
    fail("layer {}: gate and up weights of different types are not supported", l);
  return make_column_matrix(L.ffn_up.type, {L.ffn_gate.data, L.ffn_up.data}, F, E, L.ffn_up.type);
}

ColumnMatrix down_column_matrix(const Model& m, uint32_t l) {
  const Layer& L = m.layers[l];
  require_column_type(m, l, "ffn_down.weight", L.ffn_down.type);
  return make_column_matrix(L.ffn_down.type, {L.ffn_down.data}, m.hparams().n_embd,
                            m.hparams().n_ff, L.ffn_down.type);
}

}  // namespace dip
