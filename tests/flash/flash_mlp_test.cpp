// The MLP on flash computes what the in-DRAM pruned MLP computes: the same masks, the same cache
// decisions (hits), the same outputs bit for bit, for every split of a token's columns into
// hits, admitted misses and streamed misses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>

#include "cache/column_cache.h"
#include "convert/convert.h"
#include "convert/quant_mix.h"
#include "flash/dram_budget.h"
#include "flash/flash_columns.h"
#include "model/forward.h"
#include "model/mlp_columns.h"
#include "ops/elementwise.h"
#include "sparsity/select.h"
#include "sparsity/sparse_mlp.h"
#include "test_models.h"
#include "util/threadpool.h"

namespace dip {
namespace {

SparsityConfig config(const Model& m, Method method, double density, double cache_fraction) {
  SparsityConfig c;
  c.method = method;
  c.mlp_density = density;
  c.cache_fraction = cache_fraction;
  c.gamma = 0.3;
  c.keep.assign(m.hparams().n_layer,
                method == Method::kDense ? LayerKeep{} : dip_optimized_split(density));
  return c;
}

std::vector<std::vector<float>> run_tokens(const Model& m, SparseMlp* mlp, int n) {
  Session s(m, 64, 2);
  s.set_mlp_hook(mlp);
  std::vector<std::vector<float>> out;
  std::vector<float> logits;
  int32_t tok = 1;
  for (int i = 0; i < n; ++i) {
    const int32_t one[1] = {tok};
    s.eval(one, false, logits);
    out.push_back(logits);
    tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  return out;
}

void expect_close(const std::vector<std::vector<float>>& a,
                  const std::vector<std::vector<float>>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t t = 0; t < a.size(); ++t) {
    for (size_t i = 0; i < a[t].size(); ++i) {
      ASSERT_NEAR(a[t][i], b[t][i], 1e-3 * (1 + std::fabs(b[t][i])))
          << what << " token " << t << " logit " << i;
    }
  }
}

// Feeds both MLPs the same random inputs, `tokens` positions through every layer, and expects the
// same outputs bit for bit.
void expect_same_outputs(const Model& m, SparseMlp& a, SparseMlp& b, uint32_t tokens,
                         ThreadPool& pool) {
  const size_t E = m.hparams().n_embd;
  std::vector<float> ya(E), yb(E);
  for (uint32_t pos = 0; pos < tokens; ++pos) {
    for (uint32_t l = 0; l < m.hparams().n_layer; ++l) {
      const auto x = randn(E);
      a.forward(l, x.data(), ya.data(), pos, pool);
      b.forward(l, x.data(), yb.data(), pos, pool);
      for (size_t i = 0; i < E; ++i) ASSERT_EQ(yb[i], ya[i]) << "layer " << l << " token " << pos;
    }
  }
}

TEST(FlashMlp, SameOutputsAndHitsAsTheInDramPrunedMlp) {
  ThreadPool pool(2);
  int runs = 0;
  for (TensorType t : {TensorType::F16, TensorType::Q8_0}) {
    auto m = synth_model(t, Arch::kLlama, 64, 512, 3);
    const std::string p = temp_path("mlp.dipflash");
    write_flash_image(*m, p, 512, nullptr);
    const FlashImage img(p);
    for (double frac : {0.0, 0.3, 0.8}) {
      // 4 KiB staging: streamed misses in many chunks; 1-byte parts: every admitted miss a
      // batch of its own, summed as it arrives; a gap: misses near each other read as one
      // request (through the bounce buffer).
      struct Variant {
        uint64_t staging, part;
        uint32_t gap;
      };
      for (auto [staging, part, gap] :
           {Variant{0, 0, 0}, Variant{4096, 0, 0}, Variant{0, 1, 0}, Variant{4096, 0, 2048}}) {
        const SparsityConfig cfg = config(*m, Method::kDipCa, 0.5, frac);
        SparseMlp dram(*m, cfg, nullptr);
        FlashStoreOptions so;
        so.max_gap = gap;
        FlashColumns cols(img, so, frac, staging);
        if (part) cols.set_read_part_bytes(part);
        SparseMlp flash(*m, cfg, nullptr, &cols);
        // The same inputs to both; the sums are made in the same order, so the outputs are equal
        // bit for bit (and with them the scores, masks and cache decisions of later tokens).
        ASSERT_NO_FATAL_FAILURE(expect_same_outputs(*m, dram, flash, 16, pool));
        EXPECT_EQ(flash.stats().up_hits, dram.stats().up_hits) << "cache fraction " << frac;
        EXPECT_EQ(flash.stats().down_hits, dram.stats().down_hits) << "cache fraction " << frac;
        if (frac > 0) {  // (without a cache the in-DRAM MLP counts no accesses)
          EXPECT_EQ(flash.stats().up_accesses, dram.stats().up_accesses);
        }
        // Every miss was read from flash, every hit multiplied from DRAM.
        const FlashHeader& h = img.header();
        const uint64_t up_miss = flash.stats().up_accesses - flash.stats().up_hits;
        const uint64_t down_miss = flash.stats().down_accesses - flash.stats().down_hits;
        EXPECT_EQ(cols.stats().flash_bytes[0], up_miss * h.up_col_stride);
        EXPECT_EQ(cols.stats().flash_bytes[1], down_miss * h.down_col_stride);
        EXPECT_EQ(cols.store().stats().bytes, up_miss * h.up_col_stride +
                                                  down_miss * h.down_col_stride +
                                                  cols.store().stats().gap_bytes);
        if (gap) {
          EXPECT_GT(cols.store().stats().gap_bytes, 0u);
        }
        if (part && frac > 0) {  // more batches than one admitted and one streamed per matrix
          EXPECT_GT(cols.store().stats().batches, 2u * 2 * m->hparams().n_layer * 16);
        }
        if (frac == 0.0) {
          EXPECT_EQ(flash.stats().up_hits + flash.stats().down_hits, 0u);
        } else {
          EXPECT_GT(flash.stats().up_hits, 0u);
        }
        ++runs;
      }
    }
  }
  EXPECT_EQ(runs, 24);
}

// llama.cpp's Q4_K_M gives some layers' down projections Q6_K (Q8_0 columns) and the others Q4_K
// (Q4_0 columns): in a flash image every down column takes Q4_0, and the image computes what the
// pruned MLP in DRAM computes with the same column types, bit for bit. Without them DRAM keeps
// each layer's own (Q8_0 for the Q6_K layers).
TEST(FlashMlp, MixedKQuantFileRunsFromFlashAsInDram) {
  auto f32 = Model::load(synth_model_file(TensorType::F32, Arch::kLlama, 256, 512, 4, "mix.gguf"));
  const std::string path = temp_path("mix_q4_k_m.gguf");
  convert_to_gguf(*f32, path, parse_quant_mix("q4_k_m"), {});
  auto m = Model::load(path);
  int q6 = 0;
  for (const Layer& L : m->layers) q6 += L.ffn_down.type == TensorType::Q6_K;
  ASSERT_GT(q6, 0);
  ASSERT_LT(q6, int(m->layers.size()));
  EXPECT_EQ(model_column_type(*m, false), TensorType::Q4_0);
  EXPECT_EQ(model_column_type(*m, true), TensorType::Q4_0);
  const std::string p = temp_path("mix.dipflash");
  write_flash_image(*m, p, 512, nullptr);
  const FlashImage img(p);
  EXPECT_EQ(img.down_type(), TensorType::Q4_0);
  ThreadPool pool(2);
  SparsityConfig cfg = config(*m, Method::kDipCa, 0.5, 0.3);
  cfg.uniform_column_types = true;
  SparseMlp dram(*m, cfg, nullptr);
  FlashColumns cols(img, FlashStoreOptions{}, 0.3, 0);
  SparseMlp flash(*m, cfg, nullptr, &cols);
  ASSERT_NO_FATAL_FAILURE(expect_same_outputs(*m, dram, flash, 8, pool));
  const uint32_t q6_layer =
      uint32_t(std::find_if(m->layers.begin(), m->layers.end(),
                            [](const Layer& L) { return L.ffn_down.type == TensorType::Q6_K; }) -
               m->layers.begin());
  EXPECT_EQ(layer_column_type(*m, q6_layer, false, false), TensorType::Q8_0);
  EXPECT_EQ(layer_column_type(*m, q6_layer, false, true), TensorType::Q4_0);
  // The same token through both: the same masks (up+gate columns are Q4_0 either way), more
  // bytes and other sums in the Q6_K layer's own Q8_0 down columns.
  SparseMlp uniform(*m, cfg, nullptr);
  cfg.uniform_column_types = false;
  SparseMlp own_types(*m, cfg, nullptr);
  const size_t E = m->hparams().n_embd;
  std::vector<float> ya(E), yc(E);
  const auto x = randn(E);
  uniform.forward(q6_layer, x.data(), ya.data(), 0, pool);
  own_types.forward(q6_layer, x.data(), yc.data(), 0, pool);
  EXPECT_GT(own_types.stats().bytes, uniform.stats().bytes);
  EXPECT_NE(ya, yc);
  // Column types that are not Q4_0 and Q8_0 do not mix: an error naming the layer.
  auto f16 = synth_model(TensorType::F16, Arch::kLlama, 64, 512, 3);
  f16->layers[2].ffn_down.type = TensorType::Q8_0;  // (the type only: nothing is read)
  expect_error([&] { model_column_type(*f16, false); },
               "layer 2 has down weights of type Q8_0, layer 0 of type F16");
  EXPECT_EQ(model_column_type(*f16, true), TensorType::F16);
}

// One mask, one result: keeping every column in DRAM (DIP at density 1), and dense streaming
// and DIP at density 1 from flash with a small cache and small read buffers (hits, admitted and
// streamed misses in every mix), give the same logits bit for bit, token after token.
TEST(FlashMlp, EveryPathOfOneMaskGivesTheSameLogits) {
  for (TensorType t : {TensorType::F16, TensorType::Q8_0, TensorType::Q4_0}) {
    auto m = synth_model(t, Arch::kLlama, 64, 512, 2);
    const std::string p = temp_path("same.dipflash");
    write_flash_image(*m, p, 512, nullptr);
    const FlashImage img(p);
    SparseMlp in_dram(*m, config(*m, Method::kDip, 1.0, 0.3), nullptr);
    const auto reference = run_tokens(*m, &in_dram, 12);
    for (Method method : {Method::kDense, Method::kDip}) {
      FlashColumns cols(img, FlashStoreOptions{}, 0.3, 4096);
      SparseMlp flash(*m, config(*m, method, 1.0, 0.3), nullptr, &cols);
      const auto got = run_tokens(*m, &flash, 12);
      ASSERT_EQ(got.size(), reference.size());
      for (size_t tok = 0; tok < got.size(); ++tok) {
        ASSERT_EQ(got[tok], reference[tok])
            << ggml_type_name(uint32_t(t)) << " " << method_name(method) << " token " << tok;
      }
    }
  }
}

// Dense streaming: every column of every matrix through the cache gives the dense model's logits
// (F32: the dense kernels round no activations).
TEST(FlashMlp, DenseStreamingGivesDenseLogits) {
  auto m = synth_model(TensorType::F32, Arch::kLlama, 64, 256, 2);
  const std::string p = temp_path("dense.dipflash");
  write_flash_image(*m, p, 512, nullptr);
  const FlashImage img(p);
  FlashColumns cols(img, FlashStoreOptions{}, 0.4);
  SparseMlp flash(*m, config(*m, Method::kDense, 1.0, 0.4), nullptr, &cols);
  ASSERT_TRUE(flash.active());
  const auto dense = run_tokens(*m, nullptr, 8), streamed = run_tokens(*m, &flash, 8);
  expect_close(streamed, dense, "dense streaming");
  // The first token fills the cache; every later one hits the 40% that stayed (no victims: a
  // dense token uses every column).
  const double cap = std::floor(0.4 * 64);
  EXPECT_DOUBLE_EQ(flash.stats().up_hit_rate(), cap * 7 / (64.0 * 8));
}

// Next-layer prefetch changes what is resident when, never what is computed: DIP's masks do
// not depend on the cache, so the outputs equal the MLP's without it bit for bit; the bundles
// read ahead are mostly used, and the reads add up.
TEST(FlashMlp, PrefetchKeepsResultsAndRaisesHits) {
  ThreadPool pool(2);
  int completed_dip = 0;
  for (Method method : {Method::kDense, Method::kDip}) {
    for (double frac : {0.3, 0.6}) {
      for (int rep = 0; rep < (method == Method::kDip ? 3 : 1); ++rep) {
        auto m = synth_model(TensorType::F16, Arch::kLlama, 64, 512, 3);
        const size_t E = m->hparams().n_embd;
        const std::string p = temp_path("prefetch.dipflash");
        write_flash_image(*m, p, 512, nullptr);
        const FlashImage img(p);
        const SparsityConfig cfg = config(*m, method, method == Method::kDip ? 0.5 : 1.0, frac);
        FlashColumns off_cols(img, FlashStoreOptions{}, frac),
            on_cols(img, FlashStoreOptions{}, frac);
        on_cols.set_prefetch_enabled(true);
        SparseMlp off(*m, cfg, nullptr, &off_cols), on(*m, cfg, nullptr, &on_cols);
        std::vector<float> ya(E), yb(E), xin(E);
        for (uint32_t pos = 0; pos < 12; ++pos) {
          for (uint32_t l = 0; l < m->hparams().n_layer; ++l) {
            // The residual stream before the layer, and the layer's MLP input: its norm plus a
            // little (what the attention would add), so the prediction is good, not exact.
            const auto resid = randn(E), noise = randn(E, 0.05f);
            rms_norm(resid.data(), m->layers[l].ffn_norm.data(), xin.data(), E,
                     m->hparams().rms_eps);
            for (size_t i = 0; i < E; ++i) xin[i] += noise[i];
            on.prefetch_next(l, resid.data(), pos);
            off.forward(l, xin.data(), ya.data(), pos, pool);
            on.forward(l, xin.data(), yb.data(), pos, pool);
            for (size_t i = 0; i < E; ++i)
              ASSERT_EQ(yb[i], ya[i]) << "layer " << l << " token " << pos;
          }
        }
        completed_dip += method == Method::kDip;
        EXPECT_EQ(off.stats().prefetched, 0u);
        ASSERT_GT(on.stats().prefetched, 0u) << method_name(method);
        EXPECT_GE(on.stats().up_hit_rate(), off.stats().up_hit_rate()) << method_name(method);
        if (method == Method::kDense) {
          EXPECT_EQ(on.stats().prefetch_used, on.stats().prefetched)
              << "dense streaming's prediction is exact";
        } else {
          EXPECT_GT(double(on.stats().prefetch_used), 0.5 * double(on.stats().prefetched));
        }
        // Every byte read is a miss of the real masks or a bundle read ahead.
        const FlashHeader& h = img.header();
        const uint64_t up_miss = on.stats().up_accesses - on.stats().up_hits;
        const uint64_t down_miss = on.stats().down_accesses - on.stats().down_hits;
        EXPECT_EQ(
            on_cols.store().stats().bytes,
            (up_miss + on.stats().prefetched) * h.up_col_stride + down_miss * h.down_col_stride);
        EXPECT_EQ(on_cols.stats().prefetch_columns, on.stats().prefetched);
      }
    }
  }
  EXPECT_EQ(completed_dip, 6);
}

// ColumnCache::prefetch: admits what is missing while there is room, never evicts the columns
// it is asked for, counts no access, and keeps slots distinct.
TEST(FlashMlp, CachePrefetchAdmitsWithoutCounting) {
  ColumnCache c(100, 10, CachePolicy::kLru);
  const std::vector<int32_t> first = {1, 2, 3, 4, 5, 6};
  c.access(first.data(), first.size());
  const uint64_t acc = c.accesses(), hits = c.hits();
  const std::vector<int32_t> want = {2, 3, 50, 60, 70, 80, 90, 95};  // 2 resident, 6 missing
  std::vector<int32_t> adm(want.size()), slots(want.size());
  const size_t n = c.prefetch(want.data(), want.size(), adm.data(), slots.data());
  EXPECT_EQ(n, 6u);
  EXPECT_EQ(c.accesses(), acc);
  EXPECT_EQ(c.hits(), hits);
  EXPECT_EQ(c.size(), 10u);
  for (int32_t col : want) EXPECT_TRUE(c.contains(size_t(col))) << col;
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(c.slot(size_t(adm[i])), slots[i]);
  int evicted = 0;
  for (int32_t col : {1, 4, 5, 6}) evicted += !c.contains(size_t(col));
  EXPECT_EQ(evicted, 2);  // room for 6: 4 free slots, then the 2 least recent outside `want`
  std::vector<int32_t> all(100);
  for (int i = 0; i < 100; ++i) all[size_t(i)] = i;
  std::vector<int32_t> a2(100), s2(100);
  EXPECT_EQ(c.prefetch(all.data(), 100, a2.data(), s2.data()), 0u)
      << "no victim outside the request";
  ColumnCache lfu(100, 10, CachePolicy::kLfu);
  EXPECT_EQ(lfu.prefetch(want.data(), want.size(), adm.data(), slots.data()), 0u);
}

TEST(FlashMlp, BudgetParsingAndTooSmallBudgets) {
  EXPECT_EQ(parse_budget("300MiB").bytes, 300ull << 20);
  EXPECT_EQ(parse_budget("1.5GB").bytes, 1500000000ull);
  EXPECT_DOUBLE_EQ(parse_budget("50%").fraction, 0.5);
  expect_error([] { parse_budget("0%"); }, "percentage");
  expect_error([] { parse_budget("lots"); }, "bad DRAM budget");
  expect_error([] { parse_budget("12XB"); }, "bad DRAM budget");
  auto m = synth_model(TensorType::F16);
  const std::string p = temp_path("plan.dipflash");
  write_flash_image(*m, p, 512, nullptr);
  const FlashImage img(p);
  expect_error([&] { plan_dram(*m, img, parse_budget("100KiB"), 64, 32, 1, 2); },
               "too small for the part that must stay resident");
  const DramPlan big = plan_dram(*m, img, parse_budget("1GiB"), 64, 32, 1, 2);
  EXPECT_DOUBLE_EQ(big.cache_fraction, 1.0);
  const DramPlan half =
      plan_dram(*m, img, BudgetSpec{big.fixed() + img.column_bytes() / 2, 0}, 64, 32, 1, 2);
  EXPECT_NEAR(half.cache_fraction, 0.5, 1e-9);
  // The budget is the whole process's: what it held before the weights comes out of the caches.
  const uint64_t process = img.column_bytes() / 4;
  const DramPlan with_process = plan_dram(
      *m, img, BudgetSpec{big.fixed() + img.column_bytes() / 2, 0}, 64, 32, 1, 2, process);
  EXPECT_EQ(with_process.fixed(), big.fixed() + process);
  EXPECT_NEAR(with_process.cache_fraction, 0.25, 1e-6);
  BudgetSpec quarter;
  quarter.mlp_fraction = 0.25;
  EXPECT_EQ(plan_dram(*m, img, quarter, 64, 32, 1, 2, process).budget,
            plan_dram(*m, img, quarter, 64, 32, 1, 2).budget + process);
  expect_error(
      [&] {
        SparseMlp s(*m, config(*m, Method::kGlu, 0.8, 0.5), nullptr, nullptr);
        FlashColumns c(img, {}, 0.5);
        SparseMlp f(*m, config(*m, Method::kGlu, 0.8, 0.5), nullptr, &c);
      },
      "dense, dip, dip-ca or teal");
}

}  // namespace
}  // namespace dip
