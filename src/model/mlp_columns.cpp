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

namespace {
TensorType mlp_weight_type(const Layer& L, bool up) { return up ? L.ffn_up.type : L.ffn_down.type; }
bool q4_0_or_q8_0(TensorType t) { return t == TensorType::Q4_0 || t == TensorType::Q8_0; }
}  // namespace

TensorType model_column_type(const Model& m, bool up) {
  if (m.layers.empty()) fail("{}: the model has no layers", m.path());
  const TensorType first = column_type(mlp_weight_type(m.layers[0], up));
  bool mixed = false;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const TensorType t = column_type(mlp_weight_type(m.layers[l], up));
    if (t == first) continue;
    if (!q4_0_or_q8_0(t) || !q4_0_or_q8_0(first)) {
      fail(
          "{}: layer {} has {} weights of type {}, layer 0 of type {}: the pruned and flash paths "
          "need one column type per matrix kind",
          m.path(), l, up ? "up/gate" : "down",
          ggml_type_name(uint32_t(mlp_weight_type(m.layers[l], up))),
          ggml_type_name(uint32_t(mlp_weight_type(m.layers[0], up))));
    }
    mixed = true;
  }
  return mixed ? TensorType::Q4_0 : first;
}

TensorType layer_column_type(const Model& m, uint32_t l, bool up, bool uniform) {
  return uniform ? model_column_type(m, up) : column_type(mlp_weight_type(m.layers[l], up));
}

ColumnMatrix up_gate_column_matrix(const Model& m, uint32_t l, TensorType ct) {
  const size_t E = m.hparams().n_embd, F = m.hparams().n_ff;
  const Layer& L = m.layers[l];
  if (L.fused_gate_up()) return make_column_matrix(L.ffn_up.type, {L.ffn_up.data}, 2 * F, E, ct);
  if (L.ffn_gate.type != L.ffn_up.type)
    fail("{}: layer {}: gate and up weights of different types ({} and {}) are not supported",
         m.path(), l, ggml_type_name(uint32_t(L.ffn_gate.type)),
         ggml_type_name(uint32_t(L.ffn_up.type)));
  return make_column_matrix(L.ffn_up.type, {L.ffn_gate.data, L.ffn_up.data}, F, E, ct);
}

ColumnMatrix down_column_matrix(const Model& m, uint32_t l, TensorType ct) {
  const Layer& L = m.layers[l];
  return make_column_matrix(L.ffn_down.type, {L.ffn_down.data}, m.hparams().n_embd,
                            m.hparams().n_ff, ct);
}

}  // namespace dip
