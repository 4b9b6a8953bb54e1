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

TensorType model_column_type(const Model& m, bool up) {
  const auto of = [up](const Layer& L) {
    return column_type(up ? L.ffn_up.type : L.ffn_down.type);
  };
  if (m.layers.empty()) fail("{}: the model has no layers", m.path());
  const TensorType first = of(m.layers[0]);
  bool mixed = false;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const TensorType t = of(m.layers[l]);
    if (t == first) continue;
    const auto q4_or_q8 = [](TensorType x) {
      return x == TensorType::Q4_0 || x == TensorType::Q8_0;
    };
    if (!q4_or_q8(t) || !q4_or_q8(first)) {
      fail(
          "{}: layer {} has {} weights of type {}, layer 0 of type {}: the pruned and flash paths "
          "need one column type per matrix kind",
          m.path(), l, up ? "up/gate" : "down",
          ggml_type_name(uint32_t(up ? m.layers[l].ffn_up.type : m.layers[l].ffn_down.type)),
          ggml_type_name(uint32_t(up ? m.layers[0].ffn_up.type : m.layers[0].ffn_down.type)));
    }
    mixed = true;
  }
  return mixed ? TensorType::Q4_0 : first;
}

TensorType layer_column_type(const Model& m, uint32_t l, bool up, bool uniform) {
  if (uniform) return model_column_type(m, up);
  return column_type(up ? m.layers[l].ffn_up.type : m.layers[l].ffn_down.type);
}

ColumnMatrix up_gate_column_matrix(const Model& m, uint32_t l, bool uniform) {
  const size_t E = m.hparams().n_embd, F = m.hparams().n_ff;
  const Layer& L = m.layers[l];
  const TensorType ct = layer_column_type(m, l, true, uniform);
  if (L.fused_gate_up()) return make_column_matrix(L.ffn_up.type, {L.ffn_up.data}, 2 * F, E, ct);
  if (L.ffn_gate.type != L.ffn_up.type)
    fail("{}: layer {}: gate and up weights of different types ({} and {}) are not supported",
         m.path(), l, ggml_type_name(uint32_t(L.ffn_gate.type)),
         ggml_type_name(uint32_t(L.ffn_up.type)));
  return make_column_matrix(L.ffn_up.type, {L.ffn_gate.data, L.ffn_up.data}, F, E, ct);
}

ColumnMatrix down_column_matrix(const Model& m, uint32_t l, bool uniform) {
  const Layer& L = m.layers[l];
  return make_column_matrix(L.ffn_down.type, {L.ffn_down.data}, m.hparams().n_embd,
                            m.hparams().n_ff, layer_column_type(m, l, false, uniform));
}

}  // namespace dip
