// The pruned MLP reads only the kept columns, and computes exactly what the paper's masked
// dense model computes (inputs zeroed outside the masks); the whole model with every column
// kept gives the dense logits.
#include "sparsity/sparse_mlp.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "convert/synth_model.h"
#include "eval/sparse_eval.h"
#include "model/forward.h"
#include "model/model.h"
#include "ops/quant.h"
#include "sparsity/select.h"
#include "test_models.h"
#include "test_random.h"
#include "util/error.h"
#include "util/fp.h"
#include "util/threadpool.h"

namespace dip {
namespace {

std::unique_ptr<Model> synth(TensorType t, Arch a = Arch::kLlama) { return synth_model(t, a); }

std::vector<double> dense_rows(const Weight& w, size_t r0, size_t rows,
                               const std::vector<double>& x) {
  std::vector<float> row(w.cols);
  std::vector<double> y(rows);
  for (size_t r = 0; r < rows; ++r) {
    dequantize_row(w.type, w.row(r0 + r), row.data(), w.cols);
    double s = 0;
    for (size_t c = 0; c < w.cols; ++c) s += double(row[c]) * x[c];
    y[r] = s;
  }
  return y;
}

double silu(double g) { return g / (1.0 + std::exp(-g)); }

// The masked-dense reference: zero the pruned inputs, run the dense MLP in double.
// Returns false when the down mask is ambiguous (two |h| within 1e-4 at the top-k boundary).
bool masked_dense(const Model& m, uint32_t il, Method method, const LayerKeep& keep,
                  const std::vector<float>& x, float cats_threshold, std::vector<double>& y) {
  const Layer& L = m.layers[il];
  const size_t E = m.hparams().n_embd, F = m.hparams().n_ff;
  std::vector<double> xm(x.begin(), x.end());
  std::vector<int32_t> idx;
  std::vector<float> score(std::max(E, F));
  std::vector<uint32_t> scratch;
  if (method == Method::kDip) {
    for (size_t i = 0; i < E; ++i) score[i] = std::fabs(x[i]);
    select_topk(score.data(), E, keep_count(keep.up, E), idx, scratch);
    std::vector<double> kept(E, 0.0);
    for (int32_t i : idx) kept[size_t(i)] = x[size_t(i)];
    xm = kept;
  }
  if (method != Method::kDip) {
    // GLU and CATS run gate/up through the dense kernels, which take activations rounded to
    // the weights' half type (as llama.cpp does).
    for (auto& v : xm) {
      if (L.ffn_up.type == TensorType::F16) v = round_fp16(float(v));
      if (L.ffn_up.type == TensorType::BF16) v = round_bf16(float(v));
    }
  }
  const bool fused = L.fused_gate_up();
  const auto g = dense_rows(fused ? L.ffn_up : L.ffn_gate, 0, F, xm);
  const auto u = dense_rows(L.ffn_up, fused ? F : 0, F, xm);
  std::vector<double> h(F);
  for (size_t j = 0; j < F; ++j) h[j] = silu(g[j]) * u[j];
  std::vector<double> hm(F, 0.0);
  if (method == Method::kCats) {
    for (size_t j = 0; j < F; ++j) {
      const double a = std::fabs(silu(g[j]));
      if (std::fabs(a - cats_threshold) < 1e-5) return false;
      if (a >= cats_threshold) hm[j] = h[j];
    }
  } else {
    for (size_t j = 0; j < F; ++j) score[j] = float(std::fabs(h[j]));
    const size_t k = keep_count(keep.down, F);
    select_topk(score.data(), F, k, idx, scratch);
    std::vector<float> sorted(score.begin(), score.begin() + F);
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    if (k < F && sorted[k - 1] - sorted[k] < 1e-4f * sorted[k - 1]) return false;
    for (int32_t j : idx) hm[size_t(j)] = h[size_t(j)];
  }
  y = dense_rows(L.ffn_down, 0, E, hm);
  return true;
}

TEST(SparseMlp, EqualsTheMaskedDenseModel) {
  ThreadPool pool(2);
  for (Arch a : {Arch::kLlama, Arch::kPhi3}) {
    for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16}) {
      auto m = synth(t, a);
      for (Method method : {Method::kDip, Method::kGlu, Method::kCats}) {
        SparsityConfig cfg;
        cfg.method = method;
        cfg.mlp_density = method == Method::kGlu ? 0.8 : 0.5;
        cfg.cache_fraction = 0.5;
        Thresholds thr;
        const float cats_thr = 0.05f;
        if (method == Method::kCats) {
          thr.n_layer = 2;
          thr.keep_grid = {0.5, 1.0};
          thr.table.resize(2);
          for (auto& l : thr.table)
            for (auto& s : l) s = {cats_thr, cats_thr};
        }
        resolve_keep(cfg, 2, 0, 0, "");
        SparseMlp mlp(*m, cfg, method == Method::kCats ? &thr : nullptr);
        int checked = 0;
        for (int trial = 0; trial < 16; ++trial) {
          const uint32_t il = uint32_t(trial % 2);
          const auto x = randn(64, 2.0f);
          std::vector<float> out(64);
          mlp.forward(il, x.data(), out.data(), uint32_t(trial), pool);
          std::vector<double> ref;
          if (!masked_dense(*m, il, method, cfg.keep[il], x, cats_thr, ref)) continue;
          ++checked;
          double mag = 1e-3;
          for (double v : ref) mag = std::max(mag, std::fabs(v));
          const double tol = (t == TensorType::F32 ? 1e-4 : 1e-2) * mag;
          for (size_t i = 0; i < 64; ++i)
            ASSERT_NEAR(out[i], ref[i], tol)
                << method_name(method) << " " << ggml_type_name(uint32_t(t));
        }
        EXPECT_GE(checked, 8);
        EXPECT_GT(mlp.stats().evals, 0u);
        if (method == Method::kDip) {
          EXPECT_NEAR(mlp.stats().density(), 0.5, 0.03);
        }
      }
    }
  }
}

// Every column kept: the column-major path gives the dense model's logits (F32 weights).
TEST(SparseMlp, FullDensityGivesDenseLogits) {
  auto m = synth(TensorType::F32);
  SparsityConfig cfg;
  cfg.method = Method::kDip;
  cfg.mlp_density = 1.0;
  resolve_keep(cfg, 2, 0, 0, "");
  SparseMlp mlp(*m, cfg, nullptr);
  const int32_t toks[] = {1, 5, 9, 2, 7, 3};
  Session s(*m, 64, 2);
  std::vector<float> dense, sparse;
  s.eval(toks, true, dense);
  s.reset();
  s.set_mlp_hook(&mlp);
  s.eval(toks, true, sparse);
  ASSERT_EQ(dense.size(), sparse.size());
  // Per position, the relative L2 distance of the logits (as the differential tests measure):
  // the two paths sum in different orders, and a 1e-7 difference now and then tips one of the
  // attention's F16 roundings into a 1e-3 change of a single logit; a wrong or missing column
  // moves the whole vector.
  const size_t V = m->hparams().n_vocab;
  for (size_t p = 0; p < dense.size() / V; ++p) {
    double diff = 0, norm = 0;
    for (size_t i = p * V; i < (p + 1) * V; ++i) {
      diff += (double(sparse[i]) - dense[i]) * (double(sparse[i]) - dense[i]);
      norm += double(dense[i]) * dense[i];
    }
    ASSERT_LT(std::sqrt(diff / norm), 1e-3) << "position " << p;
  }
  EXPECT_NEAR(mlp.stats().density(), 1.0, 1e-12);
}

// DIP-CA raises the modelled hit rate over DIP at the same density; quantized types run.
TEST(SparseMlp, CacheAwareMaskingRaisesHitRate) {
  for (TensorType t : {TensorType::F16, TensorType::Q8_0, TensorType::Q4_0}) {
    auto m = synth(t);
    double hit[2];
    for (int ca = 0; ca < 2; ++ca) {
      SparsityConfig cfg;
      cfg.method = ca ? Method::kDipCa : Method::kDip;
      cfg.mlp_density = 0.5;
      cfg.gamma = 0.2;
      cfg.cache_fraction = 0.5;
      resolve_keep(cfg, 2, 0, 0, "");
      SparseMlp mlp(*m, cfg, nullptr);
      Session s(*m, 128, 2);
      s.set_mlp_hook(&mlp);
      std::vector<int32_t> toks(100);
      for (auto& v : toks) v = int32_t(rng()() % m->hparams().n_vocab);
      std::vector<float> logits;
      s.eval(toks, false, logits);
      for (float v : logits) ASSERT_TRUE(std::isfinite(v));
      hit[ca] = mlp.stats().hit_rate();
    }
    EXPECT_GT(hit[1], hit[0] + 0.05) << ggml_type_name(uint32_t(t));
  }
}

// A prompt evaluated as one batch reaches the MLP layer by layer (all tokens' layer 0, then
// layer 1): the trace still holds one record per token, in order, each with every layer's mask.
TEST(SparseMlp, BatchedPromptTraceHasOneRecordPerToken) {
  auto m = synth(TensorType::F32);
  SparsityConfig cfg;
  cfg.method = Method::kDip;
  cfg.mlp_density = 0.5;
  cfg.trace_file = temp_path("batch.trace");
  resolve_keep(cfg, m->hparams().n_layer, 0, 0, "");
  SparseMlp mlp(*m, cfg, nullptr);
  Session s(*m, 64, 2);
  s.set_mlp_hook(&mlp);
  const int32_t toks[] = {1, 5, 9, 2, 7, 3};
  std::vector<float> logits;
  s.eval(toks, false, logits);
  mlp.finish_trace();
  const Trace tr = read_trace(cfg.trace_file);
  ASSERT_EQ(tr.header.n_tokens, 6u);
  const size_t E = m->hparams().n_embd, F = m->hparams().n_ff;
  const TraceHeader& h = tr.header;
  for (size_t t = 0; t < 6; ++t) {
    const uint8_t* rec = tr.records.data() + t * h.record_bytes();
    for (uint32_t l = 0; l < h.n_layer; ++l) {
      size_t up = 0, down = 0;
      for (size_t i = 0; i < h.up_bytes(); ++i)
        up += size_t(__builtin_popcount(rec[l * (h.up_bytes() + h.down_bytes()) + i]));
      for (size_t i = 0; i < h.down_bytes(); ++i) {
        down +=
            size_t(__builtin_popcount(rec[l * (h.up_bytes() + h.down_bytes()) + h.up_bytes() + i]));
      }
      EXPECT_EQ(up, keep_count(cfg.keep[l].up, E)) << "token " << t << " layer " << l;
      EXPECT_EQ(down, keep_count(cfg.keep[l].down, F)) << "token " << t << " layer " << l;
    }
  }
}

TEST(SparseMlp, ThresholdMethodsNeedThresholds) {
  auto m = synth(TensorType::F32);
  SparsityConfig cfg;
  cfg.method = Method::kTeal;
  cfg.mlp_density = 0.5;
  cfg.thresholds_file = "x.json";
  resolve_keep(cfg, 2, 0, 0, "");
  EXPECT_THROW(SparseMlp(*m, cfg, nullptr), Error);
  // A calibration text that is too short is an error; thresholds of another model too.
  std::vector<int32_t> few(100, 3);
  EXPECT_THROW(calibrate(*m, few, 64, 1, nullptr), Error);
  std::vector<int32_t> many(300);
  for (auto& v : many) v = int32_t(rng()() % m->hparams().n_vocab);
  const Thresholds t = calibrate(*m, many, 64, 2, nullptr);
  const std::string p = ::testing::TempDir() + "/thr_" + std::to_string(getpid()) + ".json";
  save_thresholds(t, p);
  EXPECT_NO_THROW(load_thresholds(p, *m));
  auto other = synth(TensorType::F32);
  EXPECT_THROW(load_thresholds(p, *other), Error);
  // Thresholds decrease as more is kept.
  EXPECT_GT(t.at(0, Signal::kX, 0.1), t.at(0, Signal::kX, 0.9));
}

}  // namespace
}  // namespace dip
