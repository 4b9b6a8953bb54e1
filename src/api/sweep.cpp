#include "api/sweep.h"

#include <fmt/format.h>

#include <filesystem>

#include "eval/sparse_eval.h"
#include "model/forward.h"
#include "model/model.h"
#include "sparsity/masker.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/output_file.h"
#include "util/progress.h"

namespace dip {

SweepPlan plan_sweep(const std::vector<std::string>& methods, const std::vector<double>& densities,
                     const std::vector<double>& gammas, bool have_thresholds) {
  for (double d : densities) {
    if (!(d > 0 && d <= 1)) fail("--densities: {} is outside (0, 1]", d);
  }
  for (double g : gammas) {
    if (!(g >= 0 && g <= 1)) fail("--gammas: {} is outside [0, 1]", g);
  }
  SweepPlan plan;
  for (const std::string& name : methods) {
    const Method m = parse_method(name);
    const Masker& masker = masker_for(m);
    if (masker.always_thresholds() && !have_thresholds) {
      fail("{} needs calibrated thresholds: give --thresholds FILE (from `dip calibrate`)",
           masker.name());
    }
    for (double d : densities) {
      if (masker.shape() == MlpShape::kAllColumns) continue;
      if (d < masker.min_density()) {
        plan.skipped.push_back(fmt::format("{} at {}", masker.name(), d));
        continue;
      }
      if (masker.cache_aware()) {
        for (double g : gammas) plan.points.push_back({m, d, g});
      } else {
        plan.points.push_back({m, d, 1.0});
      }
    }
  }
  return plan;
}

nlohmann::json run_accuracy_sweep(const Model& m, const std::vector<int32_t>& toks,
                                  const SweepPlan& plan, const SparsityOptions& so,
                                  const Thresholds* thr, uint32_t ctx, size_t chunks, int threads,
                                  const std::string& text_name, const std::string& out) {
  for (const auto& s : plan.skipped)
    print_note(fmt::format("sweep: skipping {} (below the method's minimum MLP density)", s));
  std::filesystem::create_directories(out);
  Session s(m, ctx, threads);
  DenseReference ref;
  ref.without_lora = so.reference_without_lora;
  if (ref.without_lora && m.adapters().empty())
    fail("--kl-to-base compares against the model without its adapters: give --lora");
  nlohmann::json rows = nlohmann::json::array();
  // Rewritten whole after every point (temporary file, then rename): a stopped sweep leaves the
  // rows it finished, never a half-written file.
  std::string csv =
      "method,target_density,gamma,cache_fraction,mlp_density,ppl,ppl_err,dense_ppl,ppl_increase_"
      "pct,kl,top1,hit_rate,up_hit_rate,down_hit_rate,seconds\n";
  const auto t_all = Clock::now();
  const auto& points = plan.points;
  for (size_t i = 0; i < points.size(); ++i) {
    const SweepPoint& p = points[i];
    SparsityOptions po = so;
    po.gamma = p.gamma;
    SparsityConfig cfg = make_config(m, po, p.method, p.density);
    SparseMlp mlp(m, cfg, thr);
    const std::string label = fmt::format(
        "[{}/{}] {} density {}{}", i + 1, points.size(), method_name(p.method), p.density,
        masker_for(p.method).cache_aware() ? fmt::format(" gamma {}", p.gamma) : "");
    const SparseEvalResult e =
        evaluate_sparse(s, mlp, toks, ctx, chunks, ref, [&](size_t done, size_t total, double ppl) {
          print_progress(label, done, total, fmt::format("ppl {:.4f}", ppl));
        });
    end_progress();
    const double inc = 100.0 * (e.ppl.ppl / e.dense_ppl - 1.0);
    print_note(fmt::format(
        "{}: PPL {:.4f} (dense {:.4f}, {:+.2f}%), KL {:.5f}, top-1 {:.4f}, density {:.3f}, hit "
        "rate {:.3f}",
        label, e.ppl.ppl, e.dense_ppl, inc, e.kl, e.top1, e.stats.density(), e.stats.hit_rate()));
    csv += fmt::format(
        "{},{},{},{},{:.5f},{:.5f},{:.5f},{:.5f},{:.4f},{:.6f},{:.5f},{:.5f},{:.5f},{:.5f},{:.2f}"
        "\n",
        method_name(p.method), p.density, p.gamma, cfg.cache_fraction, e.stats.density(), e.ppl.ppl,
        e.ppl.ppl_err, e.dense_ppl, inc, e.kl, e.top1, e.stats.hit_rate(), e.stats.up_hit_rate(),
        e.stats.down_hit_rate(), e.ppl.seconds);
    write_file_atomically(out + "/sweep.csv", csv);
    rows.push_back({{"method", method_name(p.method)},
                    {"target_density", p.density},
                    {"gamma", p.gamma},
                    {"cache_fraction", cfg.cache_fraction},
                    {"cache_policy", cache_policy_name(cfg.policy)},
                    {"mlp_density", e.stats.density()},
                    {"ppl", e.ppl.ppl},
                    {"ppl_err", e.ppl.ppl_err},
                    {"dense_ppl", e.dense_ppl},
                    {"ppl_increase_pct", inc},
                    {"kl", e.kl},
                    {"top1", e.top1},
                    {"hit_rate", e.stats.hit_rate()},
                    {"up_hit_rate", e.stats.up_hit_rate()},
                    {"down_hit_rate", e.stats.down_hit_rate()},
                    {"seconds", e.ppl.seconds}});
  }
  nlohmann::json j = {{"model", m.path()},
                      {"text", text_name},
                      {"ctx", ctx},
                      {"chunks", ref.chunks},
                      {"scored", ref.scored},
                      {"dense_ppl", ref.ppl()},
                      {"threshold_mode", so.threshold_mode},
                      {"thresholds", so.thresholds},
                      {"skipped", plan.skipped},
                      {"rows", rows},
                      {"seconds", seconds_since(t_all)}};
  write_file_atomically(out + "/sweep.json", j.dump(1) + "\n");
  print_note(fmt::format("sweep: {} points in {:.1f} s; wrote {}/sweep.csv and sweep.json",
                         points.size(), seconds_since(t_all), out));
  return j;
}

}  // namespace dip
