// The library API does what the CLI does, for a program: generation streams every token through
// the callback and stops when it says so, a warm-up changes no output, options that do nothing
// are errors, scoring in DRAM
// compares with dense, a flash run through the API gives what the same mask gives in DRAM, and a
// sweep writes its files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "api/dip.h"
#include "flash/flash_image.h"
#include "test_models.h"

namespace dip {
namespace {

std::vector<int32_t> some_tokens(const Model& m, size_t n) {
  std::vector<int32_t> t;
  for (size_t i = 0; i < n; ++i) t.push_back(int32_t(1 + (i * 7919) % (m.hparams().n_vocab - 1)));
  return t;
}

// Twelve greedy tokens, past end-of-generation ones.
GenerateOptions greedy_12() {
  GenerateOptions g;
  g.n_predict = 12;
  g.ignore_eos = true;
  g.sampling.temperature = 0;
  return g;
}

TEST(Api, GenerateStreamsEveryTokenAndStopsWhenTheCallbackSays) {
  auto m = synth_model(TensorType::F16, Arch::kLlama, 64, 128, 2, "api_gen.gguf");
  RunOptions o;
  o.threads = 2;
  const GenerateOptions g = greedy_12();
  const std::vector<int32_t> prompt = some_tokens(*m, 5);
  Runner run(*m, o, 64, 1);
  std::vector<int32_t> seen;
  const GenerateResult all = run.generate(prompt, g, [&](int32_t t, const std::string&) {
    seen.push_back(t);
    return true;
  });
  EXPECT_EQ(all.tokens.size(), 12u);
  EXPECT_EQ(seen, all.tokens);
  EXPECT_FALSE(all.stopped_by_callback);
  EXPECT_EQ(all.report["gen_tokens"].get<int>(), 12);

  Runner again(*m, o, 64, 1);
  size_t calls = 0;
  const GenerateResult stopped =
      again.generate(prompt, g, [&](int32_t, const std::string&) { return ++calls < 4; });
  EXPECT_EQ(calls, 4u);
  EXPECT_TRUE(stopped.stopped_by_callback);
  ASSERT_EQ(stopped.tokens.size(), 4u);
  // Greedy: the same first tokens as the full run.
  EXPECT_TRUE(std::equal(stopped.tokens.begin(), stopped.tokens.end(), all.tokens.begin()));
}

// A warm-up maps the weights and makes their repacked copies, then clears the context: the
// run afterwards gives what a cold one gives. Pruned runs do not warm up.
TEST(Api, WarmingUpLeavesTheRunAsItWas) {
  auto m = synth_model(TensorType::Q4_0, Arch::kLlama, 64, 128, 2, "api_warm.gguf");
  RunOptions o;
  o.threads = 2;
  const GenerateOptions g = greedy_12();
  const std::vector<int32_t> prompt = some_tokens(*m, 5);
  Runner warm(*m, o, 64, 1);
  EXPECT_GT(warm.warm_up(), 0.0);
  EXPECT_EQ(warm.session().n_past(), 0u);
  const GenerateResult after_warm_up = warm.generate(prompt, g, {});
  Runner cold(*m, o, 64, 1);
  EXPECT_EQ(after_warm_up.tokens, cold.generate(prompt, g, {}).tokens);
  o.sparsity.method = "dip";
  o.sparsity.mlp_density = 0.5;
  Runner pruned(*m, o, 64, 1);
  EXPECT_EQ(pruned.warm_up(), 0.0);
}

TEST(Api, OptionsThatDoNothingAreErrors) {
  auto m = synth_model(TensorType::F32, Arch::kLlama, 64, 96, 2, "api_opts.gguf");
  RunOptions o;
  o.sparsity.gamma = 0.5;  // dip-ca's, on a dense run
  expect_error([&] { Runner run(*m, o, 64, 1); }, "--gamma applies to --method dip-ca only");
  o.sparsity.gamma = NAN;
  o.sparsity.mlp_density = 0.5;
  expect_error([&] { Runner run(*m, o, 64, 1); },
               "--mlp-density has no effect with --method dense");
  o.sparsity.method = "dip";
  o.flash.budget = "50%";
  expect_error([&] { Runner run(*m, o, 64, 1); }, "need --flash IMAGE");
}

TEST(Api, ScoringAPrunedMlpComparesWithDense) {
  auto m = synth_model(TensorType::F32, Arch::kLlama, 64, 128, 2, "api_score.gguf");
  const std::vector<int32_t> toks = some_tokens(*m, 200);
  RunOptions o;
  o.threads = 2;
  Runner dense(*m, o, 32, 32);
  const ScoreResult d = dense.score(toks, 3);
  EXPECT_FALSE(d.against_dense);
  EXPECT_EQ(d.ppl.chunks, 3u);
  o.sparsity.method = "dip";
  o.sparsity.mlp_density = 0.5;
  Runner pruned(*m, o, 32, 32);
  const ScoreResult p = pruned.score(toks, 3);
  ASSERT_TRUE(p.against_dense);
  EXPECT_DOUBLE_EQ(p.vs_dense.dense_ppl, d.ppl.ppl);  // the same sum over the same logits
  EXPECT_GT(p.vs_dense.kl, 0.0);
  EXPECT_NEAR(p.report["mlp_density"].get<double>(), 0.5, 0.02);
  expect_error([&] { pruned.score(toks, 1); }, "--chunks 1");
}

TEST(Api, AFlashRunGivesTheSameTokensAsTheSameMaskInDram) {
  auto m = synth_model(TensorType::F16, Arch::kLlama, 64, 256, 2, "api_flash.gguf");
  const std::string img = temp_path("api_flash.dipflash");
  write_flash_image(*m, img, 512, nullptr);
  GenerateOptions g;
  g.n_predict = 16;
  g.ignore_eos = true;
  g.sampling.seed = 7;
  const std::vector<int32_t> prompt = some_tokens(*m, 6);
  RunOptions o;
  o.threads = 2;
  o.batch = 4;
  o.sparsity.method = "dip";
  o.sparsity.mlp_density = 0.6;
  Runner in_dram(*m, o, 64, 1);
  const GenerateResult a = in_dram.generate(prompt, g, {});
  o.flash.image = img;
  o.flash.mlp_cache = "30%";
  Runner on_flash(*m, o, 64, 1);
  ASSERT_NE(on_flash.flash(), nullptr);
  const GenerateResult b = on_flash.generate(prompt, g, {});
  EXPECT_EQ(a.tokens, b.tokens);
  ASSERT_TRUE(b.report.contains("flash"));
  EXPECT_GT(b.report["flash"]["flash_bytes_per_token"].get<double>(), 0.0);
}

TEST(Api, AnAccuracySweepWritesItsFiles) {
  auto m = synth_model(TensorType::F32, Arch::kLlama, 64, 128, 2, "api_sweep.gguf");
  const std::vector<int32_t> toks = some_tokens(*m, 130);
  const SweepPlan plan = plan_sweep({"dip", "dip-ca", "glu"}, {0.3, 0.8}, {0.2}, false);
  ASSERT_EQ(plan.points.size(), 5u);  // glu keeps at least 2/3: not at 0.3
  ASSERT_EQ(plan.skipped.size(), 1u);
  expect_error([&] { plan_sweep({"cats"}, {0.5}, {0.2}, false); }, "needs calibrated thresholds");
  expect_error([&] { plan_sweep({"dip"}, {1.5}, {0.2}, false); }, "outside (0, 1]");
  const std::string out = temp_path("api_sweep_out");
  const ProgressSink quiet = set_progress_sink({});
  const nlohmann::json j = run_accuracy_sweep(*m, toks, plan, {}, nullptr, 32, 2, 2, "t", out);
  set_progress_sink(quiet);
  EXPECT_EQ(j["rows"].size(), 5u);
  std::ifstream csv(out + "/sweep.csv");
  size_t lines = 0;
  for (std::string l; std::getline(csv, l);) ++lines;
  EXPECT_EQ(lines, 6u);  // header and one row per point
  EXPECT_TRUE(std::filesystem::exists(out + "/sweep.json"));
  std::filesystem::remove_all(out);
}

}  // namespace
}  // namespace dip
