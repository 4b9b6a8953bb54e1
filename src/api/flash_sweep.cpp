#include "api/flash_sweep.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/perplexity.h"
#include "model/forward.h"
#include "model/model.h"
#include "sparsity/masker.h"
#include "sparsity/sparse_mlp.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/output_file.h"
#include "util/progress.h"

namespace dip {

namespace {
// Resets this process's peak RSS (VmHWM) so each point reports its own.
void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}
}  // namespace

void run_flash_sweep(const Model& m, const std::vector<int32_t>& toks,
                     const std::vector<SweepPoint>& points, const std::vector<std::string>& budgets,
                     const FlashOptions& fo, const SparsityOptions& so, uint32_t ctx, size_t chunks,
                     int threads, uint64_t overhead_rss, const std::string& out) {
  for (const SweepPoint& p : points) {
    if (!masker_for(p.method).runs_from_flash()) {  // checked before any run
      fail("sweep --flash: {} reads gate rows densely; use dense, dip, dip-ca or teal",
           method_name(p.method));
    }
  }
  std::vector<SweepPoint> all;
  all.push_back({Method::kDense, 1.0, 1.0});  // dense streaming: baseline and reference perplexity
  for (const SweepPoint& p : points) {
    if (masker_for(p.method).shape() != MlpShape::kAllColumns) all.push_back(p);
  }
  std::filesystem::create_directories(out);
  // Rewritten whole after every run (temporary file, then rename): a stopped sweep leaves the
  // rows it finished, never a half-written file.
  std::string csv =
      "budget,method,target_density,gamma,mlp_density,ppl,ppl_increase_pct,tokens_per_second,"
      "flash_mib_per_token,"
      "requests_per_token,hit_rate,up_hit_rate,down_hit_rate,cache_fraction,budget_mib,peak_rss_"
      "mib,within_budget,"
      "flash_wait_ms,mlp_compute_ms,other_ms\n";
  nlohmann::json rows = nlohmann::json::array();
  const auto t_all = Clock::now();
  size_t done = 0;
  for (const std::string& b : budgets) {
    FlashOptions f = fo;
    f.budget.clear();
    f.mlp_cache.clear();
    (b.ends_with("%") ? f.mlp_cache : f.budget) = b;
    double dense_ppl = 0;
    for (const SweepPoint& p : all) {
      ++done;
      reset_peak_rss();
      auto run = make_flash_run(m, f, ctx, ctx, threads, overhead_rss);
      SparsityOptions po = so;
      po.gamma = p.gamma;
      po.trace.clear();
      const Masker& masker = masker_for(p.method);
      const bool dense = masker.shape() == MlpShape::kAllColumns;
      SparsityConfig cfg = make_config(m, po, p.method, dense ? 1.0 : p.density);
      std::unique_ptr<Thresholds> thr;
      if (cfg.use_thresholds) thr = std::make_unique<Thresholds>(load_thresholds(so.thresholds, m));
      SparseMlp mlp(m, cfg, thr.get(), run->columns.get());
      Session s(m, ctx, threads);
      s.set_max_batch(kFlashMaxBatch);
      s.set_mlp_hook(&mlp);
      const std::string label =
          fmt::format("[{}/{}] budget {} {}{}{}", done, budgets.size() * all.size(), b,
                      method_name(p.method), dense ? "" : fmt::format(" density {}", p.density),
                      masker.cache_aware() ? fmt::format(" gamma {}", p.gamma) : "");
      std::vector<int32_t> used = toks;
      if (chunks) used.resize(std::min(toks.size(), chunks * size_t(ctx)));
      const PerplexityResult r = perplexity(s, used, ctx, [&](size_t d, size_t total, double ppl) {
        print_progress(label.c_str(), d, total, fmt::format("ppl {:.4f}", ppl));
      });
      end_progress();
      if (dense) dense_ppl = r.ppl;
      const size_t n_tok = r.chunks * ctx;
      const nlohmann::json rep = flash_report(*run, mlp, n_tok, r.seconds);
      const double inc = 100.0 * (r.ppl / dense_ppl - 1.0);
      const double per = 1e3 / double(std::max<size_t>(1, n_tok));
      nlohmann::json row = {{"budget", b},
                            {"method", method_name(p.method)},
                            {"target_density", p.density},
                            {"gamma", p.gamma},
                            {"mlp_density", mlp.stats().density()},
                            {"ppl", r.ppl},
                            {"ppl_err", r.ppl_err},
                            {"dense_streaming_ppl", dense_ppl},
                            {"ppl_increase_pct", inc},
                            {"flash", rep}};
      rows.push_back(row);
      csv += fmt::format(
          "{},{},{},{},{:.4f},{:.5f},{:.3f},{:.3f},{:.3f},{:.1f},{:.4f},{:.4f},{:.4f},{:.4f},{:.1f}"
          ",{:.1f},{},{:.3f},{:.3f},{:.3f}\n",
          b, method_name(p.method), p.density, p.gamma, mlp.stats().density(), r.ppl, inc,
          rep["tokens_per_second"].get<double>(),
          rep["flash_bytes_per_token"].get<double>() / 1048576.0,
          rep["flash_requests_per_token"].get<double>(), rep["hit_rate"].get<double>(),
          rep["up_hit_rate"].get<double>(), rep["down_hit_rate"].get<double>(),
          rep["cache_fraction"].get<double>(), rep["budget"].get<double>() / 1048576.0,
          rep["peak_rss"].get<double>() / 1048576.0, rep["within_budget"].get<bool>() ? 1 : 0,
          per * rep["flash_wait_s"].get<double>(), per * rep["mlp_compute_s"].get<double>(),
          per * rep["other_s"].get<double>());
      write_file_atomically(out + "/flash_sweep.csv", csv);
      print_note(fmt::format(
          "{}: PPL {:.4f} ({:+.2f}% vs dense streaming), {:.2f} tokens/s, {:.2f} MiB/token from "
          "flash, hit rate {:.3f}, peak RSS {:.1f} MiB of {:.1f} (process {:.1f})",
          label, r.ppl, inc, rep["tokens_per_second"].get<double>(),
          rep["flash_bytes_per_token"].get<double>() / 1048576.0, rep["hit_rate"].get<double>(),
          rep["peak_rss"].get<double>() / 1048576.0, rep["budget"].get<double>() / 1048576.0,
          double(overhead_rss) / 1048576.0));
    }
  }
  nlohmann::json j = {{"model", m.path()},
                      {"ctx", ctx},
                      {"chunks", chunks},
                      {"rows", rows},
                      {"seconds", seconds_since(t_all)}};
  write_file_atomically(out + "/flash_sweep.json", j.dump(1) + "\n");
  print_note(
      fmt::format("sweep: {} flash runs in {:.1f} s; wrote {}/flash_sweep.csv and "
                  "flash_sweep.json",
                  done, seconds_since(t_all), out));
}

}  // namespace dip
