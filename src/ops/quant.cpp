#include "ops/quant.h"

#include <cmath>
#include <cstring>

#include "ops/quant_k.h"
#include "util/error.h"
#include "util/fp.h"

namespace dip {

void dequantize_row(TensorType t, const void* src, float* dst, size_t n) {
  switch (t) {
    case TensorType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case TensorType::F16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(s[i]);
      return;
    }
    case TensorType::BF16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case TensorType::Q8_0: {
      auto* b = static_cast<const BlockQ8_0*>(src);
      for (size_t i = 0; i < n / kQK8_0; ++i) {
        const float d = fp16_to_f32(b[i].d);
        for (size_t j = 0; j < kQK8_0; ++j) dst[i * kQK8_0 + j] = d * b[i].qs[j];
      }
      return;
    }
    case TensorType::Q4_0: {
      auto* b = static_cast<const BlockQ4_0*>(src);
      for (size_t i = 0; i < n / kQK4_0; ++i) {
        const float d = fp16_to_f32(b[i].d);
        for (size_t j = 0; j < kQK4_0 / 2; ++j) {
          dst[i * kQK4_0 + j] = d * (int(b[i].qs[j] & 0x0f) - 8);
          dst[i * kQK4_0 + j + kQK4_0 / 2] = d * (int(b[i].qs[j] >> 4) - 8);
        }
      }
      return;
    }
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      dequantize_row_k(t, src, dst, n);
      return;
    case TensorType::Q8_K:
      break;
  }
  fail("internal: dequantize of unsupported type {}", uint32_t(t));
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, size_t n) {
  for (size_t i = 0; i < n / kQK8_0; ++i) {
    float amax = 0.0f;
    for (size_t j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[i * kQK8_0 + j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    for (size_t j = 0; j < kQK8_0; ++j) y[i].qs[j] = int8_t(std::nearbyint(x[i * kQK8_0 + j] * id));
  }
}

void quantize_row_q8_0_act(const float* x, BlockQ8_0* y, size_t n) {
  for (size_t i = 0; i < n / kQK8_0; ++i) {
    float amax = 0.0f;
    for (size_t j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[i * kQK8_0 + j]));
    y[i].d = f32_to_fp16(amax / 127.0f);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (size_t j = 0; j < kQK8_0; ++j) y[i].qs[j] = int8_t(std::nearbyint(x[i * kQK8_0 + j] * id));
  }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, size_t n) {
  for (size_t i = 0; i < n / kQK4_0; ++i) {
    float amax = 0.0f, max = 0.0f;
    for (size_t j = 0; j < kQK4_0; ++j) {
      const float v = x[i * kQK4_0 + j];
      if (std::fabs(v) > amax) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    for (size_t j = 0; j < kQK4_0 / 2; ++j) {
      const float x0 = x[i * kQK4_0 + j] * id;
      const float x1 = x[i * kQK4_0 + j + kQK4_0 / 2] * id;
      const uint8_t q0 = uint8_t(std::min(15, int(int8_t(x0 + 8.5f))));
      const uint8_t q1 = uint8_t(std::min(15, int(int8_t(x1 + 8.5f))));
      y[i].qs[j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

void quantize_row(TensorType t, const float* x, void* dst, size_t n) {
  switch (t) {
    case TensorType::F32:
      std::memcpy(dst, x, n * 4);
      return;
    case TensorType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_fp16(x[i]);
      return;
    }
    case TensorType::BF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(x[i]);
      return;
    }
    case TensorType::Q8_0:
      quantize_row_q8_0(x, static_cast<BlockQ8_0*>(dst), n);
      return;
    case TensorType::Q4_0:
      quantize_row_q4_0(x, static_cast<BlockQ4_0*>(dst), n);
      return;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      quantize_row_k(t, x, dst, n);
      return;
    case TensorType::Q8_K:
      quantize_row_q8_K(x, static_cast<BlockQ8K*>(dst), n);
      return;
  }
  fail("internal: quantize to unsupported type {}", uint32_t(t));
}

TensorType activation_type(TensorType weight) {
  switch (weight) {
    case TensorType::Q8_0:
    case TensorType::Q4_0:
      return TensorType::Q8_0;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return TensorType::Q8_K;
    default:
      return weight;
  }
}

float dot_ggml_lane_order_ref(TensorType wt, const void* w, const BlockQ8_0* act, size_t n) {
  const bool q4 = wt == TensorType::Q4_0;
  auto* w8 = static_cast<const BlockQ8_0*>(w);
  auto* w4 = static_cast<const BlockQ4_0*>(w);
  float lane[8] = {};
  for (size_t b = 0; b < n / kQK8_0; ++b) {
    const float d = (q4 ? fp16_to_f32(w4[b].d) : fp16_to_f32(w8[b].d)) * fp16_to_f32(act[b].d);
    for (int l = 0; l < 8; ++l) {
      int s = 0;
      for (int j = 4 * l; j < 4 * l + 4; ++j) {
        const int q = q4 ? (j < 16 ? w4[b].qs[j] & 0x0f : w4[b].qs[j - 16] >> 4) - 8 : w8[b].qs[j];
        s += q * act[b].qs[j];
      }
      lane[l] = std::fma(d, float(s), lane[l]);
    }
  }
  float h[4];
  for (int l = 0; l < 4; ++l) h[l] = lane[l + 4] + lane[l];
  return (h[0] + h[2]) + (h[1] + h[3]);
}

void Q4ActSums::compute(const uint8_t* acts, size_t arb, size_t n_act, size_t n_blocks) {
  nb = n_blocks;
  off8.resize(n_act * nb);
  d.resize(n_act * nb);
  for (size_t t = 0; t < n_act; ++t) {
    const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(acts + t * arb);
    for (size_t b = 0; b < nb; ++b) {
      int s = 0;
      for (size_t j = 0; j < kQK8_0; ++j) s += a[b].qs[j];
      off8[t * nb + b] = 8 * s;
      d[t * nb + b] = fp16_to_f32(a[b].d);
    }
  }
}

float dot_q4_0_rows_order_ref(const BlockQ4_0* w, const BlockQ8_0* act, size_t n) {
  float acc = 0.0f;
  for (size_t b = 0; b < n / kQK8_0; ++b) {
    int s = 0;
    for (size_t j = 0; j < kQK8_0 / 2; ++j) {
      s += (int(w[b].qs[j] & 0x0f) - 8) * act[b].qs[j] +
           (int(w[b].qs[j] >> 4) - 8) * act[b].qs[j + kQK8_0 / 2];
    }
    acc = std::fma(float(s), fp16_to_f32(w[b].d) * fp16_to_f32(act[b].d), acc);
  }
  return acc;
}

float dot_ref(TensorType wt, const void* w, const void* act, size_t n) {
  switch (wt) {
    case TensorType::F32: {
      auto* a = static_cast<const float*>(w);
      auto* b = static_cast<const float*>(act);
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
      return float(s);
    }
    case TensorType::F16:
    case TensorType::BF16: {
      auto* a = static_cast<const uint16_t*>(w);
      auto* b = static_cast<const uint16_t*>(act);
      double s = 0;
      for (size_t i = 0; i < n; ++i) {
        const float x = wt == TensorType::F16 ? fp16_to_f32(a[i]) : bf16_to_f32(a[i]);
        const float y = wt == TensorType::F16 ? fp16_to_f32(b[i]) : bf16_to_f32(b[i]);
        s += double(x) * y;
      }
      return float(s);
    }
    case TensorType::Q8_0: {
      auto* a = static_cast<const BlockQ8_0*>(w);
      auto* b = static_cast<const BlockQ8_0*>(act);
      double s = 0;
      for (size_t i = 0; i < n / kQK8_0; ++i) {
        int acc = 0;
        for (size_t j = 0; j < kQK8_0; ++j) acc += int(a[i].qs[j]) * int(b[i].qs[j]);
        s += double(fp16_to_f32(a[i].d)) * fp16_to_f32(b[i].d) * acc;
      }
      return float(s);
    }
    case TensorType::Q4_0: {
      auto* a = static_cast<const BlockQ4_0*>(w);
      auto* b = static_cast<const BlockQ8_0*>(act);
      double s = 0;
      for (size_t i = 0; i < n / kQK4_0; ++i) {
        int acc = 0;
        for (size_t j = 0; j < kQK4_0 / 2; ++j) {
          acc += (int(a[i].qs[j] & 0x0f) - 8) * int(b[i].qs[j]);
          acc += (int(a[i].qs[j] >> 4) - 8) * int(b[i].qs[j + kQK4_0 / 2]);
        }
        s += double(fp16_to_f32(a[i].d)) * fp16_to_f32(b[i].d) * acc;
      }
      return float(s);
    }
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return dot_k(wt, w, static_cast<const BlockQ8K*>(act), n);
    case TensorType::Q8_K:
      break;
  }
  fail("internal: dot of unsupported type {}", uint32_t(wt));
}

}  // namespace dip
