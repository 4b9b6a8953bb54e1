#include "api/sim_sweep.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "eval/sparse_eval.h"
#include "flash/flash_store.h"
#include "model/forward.h"
#include "model/model.h"
#include "sim/hardware_model.h"
#include "sim/sweep_summary.h"
#include "sparsity/masker.h"
#include "sparsity/sparse_mlp.h"
#include "sparsity/trace.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/number_list.h"
#include "util/output_file.h"
#include "util/progress.h"

namespace dip {

namespace {

// "N%" -> the static part + N% of the MLP; else a size with a unit (a bare number is MiB-based as
// --dram-budget reads it).
double parse_dram_size(const std::string& s, const Footprint& full) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !std::isfinite(v))
    fail("--sim-dram: bad DRAM size '{}' (use e.g. 50% or 300MiB)", s);
  const std::string u(end);
  if (u == "%") {
    if (!(v >= 0 && v <= 100)) fail("--sim-dram: '{}' must be a share of the MLP in [0, 100]%", s);
    return full.static_bytes + v / 100.0 * full.mlp;
  }
  const double mul = byte_unit(u, true);
  if (mul == 0 || !(v > 0)) fail("--sim-dram: bad DRAM size '{}' (use e.g. 50% or 300MiB)", s);
  return v * mul;
}

struct Accuracy {  // of one point, against dense on the same windows
  double ppl = 0, ppl_err = 0, dense_ppl = 0, kl = 0, top1 = 0, density = 0, seconds = 0;
};

struct Run {  // one engine run (or one point of --sim-accuracy): its accuracy and its masks
  SweepPoint point;
  int dram_index = -1;  // DIP-CA: the DRAM size its modelled cache was sized for; else -1 (all)
  std::string label;
};

// A previous simulated sweep of this model (simulate.json), whose accuracy rows a projection reads.
struct AccuracySource {
  nlohmann::json j;
  std::map<double, double> share_of_dram;  // DRAM bytes -> MLP cache share
  // The row of (method, density, gamma[, cache share]); fails naming the point when absent.
  Accuracy find(const std::string& path, const std::string& method, double density, double gamma,
                double share) const {
    for (const auto& r : j["accuracy"]) {
      if (r["method"] != method || std::fabs(r["target_density"].get<double>() - density) > 1e-9 ||
          std::fabs(r["gamma"].get<double>() - gamma) > 1e-9) {
        continue;
      }
      if (method == "dip-ca") {
        auto it = share_of_dram.find(r["dram_bytes"].get<double>());
        if (it == share_of_dram.end() || std::fabs(it->second - share) > 1e-6) continue;
      }
      return {r["ppl"], r["ppl_err"], j["dense_ppl"], r["kl"], r["top1"], r["mlp_density"], 0.0};
    }
    fail("{}: no accuracy for {} at density {} gamma {}{} (run the sweep with that point first)",
         path, method, density, gamma,
         method == "dip-ca" ? fmt::format(" with {:.1f}% of the MLP cached", 100 * share) : "");
  }
};

}  // namespace

nlohmann::json run_sim_sweep(const Model& m, const std::vector<int32_t>& toks,
                             const std::vector<SweepPoint>& points, const SimSweepOptions& sim,
                             const SparsityOptions& so, const Thresholds* thr, uint32_t ctx,
                             size_t chunks, int threads, const std::string& out) {
  const bool projecting = !sim.shape.empty();
  SimConfig base;
  base.shape = projecting ? shape_preset(sim.shape) : shape_of(m);
  base.bits = sim.bits;
  base.device = device_preset(sim.device);
  base.policy = parse_sim_policy(sim.policy);
  const bool online = base.policy == SimPolicy::kLru || base.policy == SimPolicy::kLfu;
  // Every value is checked before the first run.
  SimConfig probe = base;
  probe.device.dram_size = 1e18;
  const Footprint full = footprint(probe);
  // A projection sizes the engine's DIP-CA cache by the same share of this model's MLP.
  SimConfig own = base;
  own.shape = shape_of(m);
  probe.shape = own.shape;
  const Footprint own_full = footprint(probe);
  std::vector<std::pair<double, double>> sizes;  // (DRAM of the simulated shape, of this model)
  for (const std::string& s : split_commas(sim.dram_sizes)) {
    if (projecting && !s.ends_with("%"))
      fail("--sim-shape: give --sim-dram as shares of the MLP (e.g. 25%), not '{}'", s);
    sizes.push_back({parse_dram_size(s, full), parse_dram_size(s, own_full)});
  }
  if (sizes.empty()) fail("--sim-dram: empty list");
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  std::vector<double> drams;
  std::vector<Footprint> fps, own_fps;
  for (const auto& [d, own_d] : sizes) {
    drams.push_back(d);
    SimConfig c = base;
    c.device.dram_size = d;
    fps.push_back(footprint(c));  // DRAM below the static part: a clear error here
    own.device.dram_size = own_d;
    own_fps.push_back(footprint(own));
  }
  std::vector<double> bws;
  for (const std::string& s : split_commas(sim.flash_bws)) bws.push_back(parse_bandwidth(s));
  if (bws.empty()) bws.push_back(base.device.flash_bw);
  const std::vector<double> budgets = parse_number_list(sim.budgets, "--sim-budgets");
  for (double v : budgets) {
    if (!(v >= 0)) fail("--sim-budgets: {} is not a perplexity increase in percent (>= 0)", v);
  }
  std::vector<Run> runs;
  for (const SweepPoint& p : points) {
    const Masker& masker = masker_for(p.method);
    if (masker.shape() == MlpShape::kAllColumns) continue;
    // Synthetic masks model per-token top-k of the inputs (dip, dip-ca).
    if (projecting && !(masker.masks_inputs() && !masker.always_thresholds())) {
      print_note(fmt::format(
          "sweep --simulate --sim-shape: skipping {} at {} (synthetic masks model dip and dip-ca "
          "only)",
          method_name(p.method), p.density));
      continue;
    }
    if (masker.shape() == MlpShape::kDenseGate) {
      print_note(fmt::format(
          "sweep --simulate: skipping {} at {} (it reads up rows, not the column layout the "
          "simulator models)",
          masker.name(), p.density));
      continue;
    }
    if (masker.cache_aware() && !online) {
      fail("sweep --simulate: dip-ca rescores against a live cache; use --sim-policy lru or lfu");
    }
    if (masker.cache_aware()) {
      for (size_t k = 0; k < drams.size(); ++k) runs.push_back({p, int(k), ""});
    } else {
      runs.push_back({p, -1, ""});
    }
  }
  std::unique_ptr<AccuracySource> from;
  if (!sim.accuracy.empty()) {
    if (!projecting) fail("--sim-accuracy reuses accuracy for a projection; give --sim-shape too");
    from = std::make_unique<AccuracySource>();
    std::ifstream f(sim.accuracy);
    if (!f) fail("{}: cannot open", sim.accuracy);
    from->j = nlohmann::json::parse(f, nullptr, false);
    const auto& j = from->j;
    if (j.is_discarded() || !j.contains("accuracy") || !j.contains("dram_sizes") ||
        !j.contains("shape")) {
      fail("{}: not a dip sweep --simulate result", sim.accuracy);
    }
    if (j.contains("projection") && !j["projection"].is_null())
      fail("{}: is itself a projection", sim.accuracy);
    if (j["shape"]["d_model"] != own.shape.d_model || j["shape"]["d_ff"] != own.shape.d_ff ||
        j["shape"]["n_layer"] != own.shape.n_layer) {
      fail("{}: the accuracy was measured on a model of another shape", sim.accuracy);
    }
    for (const auto& d : j["dram_sizes"])
      from->share_of_dram[d["bytes"].get<double>()] = d["mlp_cache_share"].get<double>();
  }
  const std::filesystem::path trace_dir = std::filesystem::path(out) / "traces";
  std::filesystem::create_directories(trace_dir);

  Session session(m, ctx, threads);
  DenseReference ref;
  std::vector<SimPoint> sim_points;
  nlohmann::json acc_rows = nlohmann::json::array(), sim_rows = nlohmann::json::array();
  // The CSV is rewritten whole (temporary file, then rename) after every point: a sweep that is
  // stopped leaves the rows it finished, never a half-written file.
  std::string csv =
      "method,target_density,gamma,label,mlp_density,ppl,ppl_increase_pct,kl,top1,dram_bytes,"
      "mlp_cache_share,flash_bw,"
      "tokens_per_s,ttft_s,flash_bytes_per_token,hit_rate\n";
  const auto t_all = Clock::now();
  double sim_seconds = 0;
  uint64_t events = 0;

  // Replays masks at the DRAM sizes [k0, k1) and every flash speed: one row each.
  auto simulate_run = [&](const std::string& method, const std::string& label, const SweepPoint& p,
                          double mlp_density, double ppl, double inc, double kl, double top1,
                          const std::vector<TokenMasks>& masks, size_t k0, size_t k1) {
    const auto t0 = Clock::now();
    for (size_t k = k0; k < k1; ++k) {
      SimConfig c = base;
      c.device.dram_size = drams[k];
      c.warm_tokens =
          uint32_t(std::min<size_t>(64, masks.size() / 4));  // caches warm, as in a long generation
      const Replay rp = replay(c, fps[k], masks);
      events += rp.events;
      for (double bw : bws) {
        c.device.flash_bw = bw;
        const SimResult r = time_replay(c, fps[k], rp);
        sim_points.push_back({method, label, inc, drams[k], bw, r.tokens_per_s});
        const double share = fps[k].cache_bytes / fps[k].mlp;
        csv += fmt::format(
            "{},{},{},{},{:.5f},{:.5f},{:.4f},{:.6f},{:.5f},{:.0f},{:.4f},{:.0f},{:.4f},{:.5f},{:."
            "0f},{:.5f}\n",
            method, p.density, p.gamma, label, mlp_density, ppl, inc, kl, top1, drams[k], share, bw,
            r.tokens_per_s, r.ttft, r.flash_bytes_per_token, r.hit_rate);
        sim_rows.push_back({{"method", method},
                            {"target_density", p.density},
                            {"gamma", p.gamma},
                            {"label", label},
                            {"mlp_density", mlp_density},
                            {"ppl", ppl},
                            {"ppl_increase_pct", inc},
                            {"kl", kl},
                            {"top1", top1},
                            {"dram_bytes", drams[k]},
                            {"mlp_cache_share", share},
                            {"flash_bw", bw},
                            {"tokens_per_s", r.tokens_per_s},
                            {"ttft_s", r.ttft},
                            {"t_fixed_s", r.t_fixed},
                            {"t_dyn_s", r.t_dyn},
                            {"flash_bytes_per_token", r.flash_bytes_per_token},
                            {"flash_requests_per_token", r.flash_requests_per_token},
                            {"hit_rate", r.hit_rate},
                            {"upgate_columns", fps[k].upgate_columns},
                            {"down_columns", fps[k].down_columns}});
      }
    }
    write_file_atomically(out + "/simulate.csv", csv);
    sim_seconds += seconds_since(t0);
  };

  for (size_t i = 0; i < runs.size(); ++i) {
    Run& run = runs[i];
    const SweepPoint& p = run.point;
    SparsityOptions po = so;
    po.gamma = p.gamma;
    SparsityConfig cfg = make_config(m, po, p.method, p.density);
    cfg.policy = base.policy == SimPolicy::kLfu ? CachePolicy::kLfu : CachePolicy::kLru;
    if (run.dram_index >= 0) {  // DIP-CA against the simulator's cache of that DRAM size
      cfg.up_cache_columns = int64_t(own_fps[size_t(run.dram_index)].upgate_columns);
      cfg.down_cache_columns = int64_t(own_fps[size_t(run.dram_index)].down_columns);
    } else {
      cfg.cache_fraction = 0;  // the masks do not depend on a cache: the simulator replays them
    }
    const std::string trace = (trace_dir / fmt::format("point{:03d}.trace", i)).string();
    if (!projecting) cfg.trace_file = trace;
    run.label =
        fmt::format("{} {}{}", method_name(p.method), p.density,
                    masker_for(p.method).cache_aware() ? fmt::format(" gamma {}", p.gamma) : "");
    const std::string progress = fmt::format(
        "[{}/{}] {}{}", i + 1, runs.size(), run.label,
        run.dram_index >= 0 ? fmt::format(" at {:.1f} MB", drams[size_t(run.dram_index)] / 1e6)
                            : "");
    Accuracy e;
    const double own_share =
        run.dram_index >= 0 ? own_fps[size_t(run.dram_index)].cache_bytes / own_full.mlp : 0.0;
    if (from) {
      e = from->find(sim.accuracy, method_name(p.method), p.density, p.gamma, own_share);
    } else {
      SparseMlp mlp(m, cfg, thr);
      const SparseEvalResult r = evaluate_sparse(
          session, mlp, toks, ctx, chunks, ref, [&](size_t done, size_t total, double ppl) {
            print_progress(progress.c_str(), done, total, fmt::format("ppl {:.4f}", ppl));
          });
      mlp.finish_trace();
      end_progress();
      e = {r.ppl.ppl, r.ppl.ppl_err, r.dense_ppl, r.kl, r.top1, r.stats.density(), r.ppl.seconds};
    }
    const double inc = 100.0 * (e.ppl / e.dense_ppl - 1.0);
    print_note(fmt::format("{}: PPL {:.4f} ({:+.2f}%), KL {:.5f}, top-1 {:.4f}, density {:.3f}",
                           progress, e.ppl, inc, e.kl, e.top1, e.density));
    acc_rows.push_back({{"method", method_name(p.method)},
                        {"target_density", p.density},
                        {"gamma", p.gamma},
                        {"label", run.label},
                        {"dram_bytes", run.dram_index >= 0 ? drams[size_t(run.dram_index)] : 0.0},
                        {"mlp_cache_share", own_share},
                        {"mlp_density", e.density},
                        {"ppl", e.ppl},
                        {"ppl_err", e.ppl_err},
                        {"ppl_increase_pct", inc},
                        {"kl", e.kl},
                        {"top1", e.top1},
                        {"seconds", e.seconds}});
    const size_t k0 = run.dram_index >= 0 ? size_t(run.dram_index) : 0,
                 k1 = run.dram_index >= 0 ? k0 + 1 : drams.size();
    std::vector<TokenMasks> masks;
    if (projecting) {  // synthetic masks of the point's density for the simulated shape
      CacheAwareSynthesis ca{p.gamma, fps[k0].upgate_columns, fps[k0].down_columns, base.policy};
      masks = synthetic_masks(base.shape, sim.tokens, p.density, sim.skew, 1000 + i,
                              run.dram_index >= 0 ? &ca : nullptr);
    } else {
      masks = masks_from_trace(read_trace(trace), base.shape);
    }
    simulate_run(method_name(p.method), run.label, p, e.density, e.ppl, inc, e.kl, e.top1, masks,
                 k0, k1);
    if (!sim.keep_traces && !projecting) std::filesystem::remove(trace);
  }
  if (!ref.filled && !from) {  // no pruned point ran: the dense reference alone
    SparsityConfig dense_cfg = make_config(m, so, Method::kDense, 1.0);
    SparseMlp mlp(m, dense_cfg, thr);
    evaluate_sparse(session, mlp, toks, ctx, chunks, ref, [](size_t, size_t, double) {});
  }
  const double dense_ppl = from ? from->j["dense_ppl"].get<double>() : ref.ppl();
  const size_t ref_chunks = from ? from->j["chunks"].get<size_t>() : ref.chunks;
  const size_t ref_scored = from ? from->j["scored"].get<size_t>() : ref.scored;
  // Dense streaming: every column every token.
  simulate_run("dense", "dense", {Method::kDense, 1.0, 1.0}, 1.0, dense_ppl, 0.0, 0.0, 1.0,
               synthetic_masks(base.shape, 64, 1.0, 1.0, 1), 0, drams.size());
  if (!sim.keep_traces) std::filesystem::remove(trace_dir);

  const std::vector<Comparison> cmp = compare_to_dense(sim_points, budgets);
  nlohmann::json cmp_rows = nlohmann::json::array();
  for (const Comparison& c : cmp) {
    cmp_rows.push_back({{"method", c.method},
                        {"flash_bw", c.flash_bw},
                        {"max_ppl_increase_pct", c.max_ppl_increase_pct},
                        {"dram_bytes", c.dram_size},
                        {"dense_tps", c.dense_tps},
                        {"method_tps", c.method_tps},
                        {"gain", c.gain},
                        {"best", c.best_label},
                        {"equal_tps_dram_bytes", c.equal_tps_dram},
                        {"memory_reduction", c.memory_reduction},
                        {"reduction_is_lower_bound", c.reduction_is_lower_bound},
                        // The same saving counted on the MLP cache alone (the static part stays).
                        {"cache_reduction", c.equal_tps_dram > 0 && c.dram_size > full.static_bytes
                                                ? 1.0 - (c.equal_tps_dram - full.static_bytes) /
                                                            (c.dram_size - full.static_bytes)
                                                : 0.0}});
  }
  const double secs = seconds_since(t_all);
  nlohmann::json dram_json = nlohmann::json::array();
  for (size_t k = 0; k < drams.size(); ++k) {
    dram_json.push_back({{"bytes", drams[k]},
                         {"mlp_cache_share", fps[k].cache_bytes / fps[k].mlp},
                         {"upgate_columns", fps[k].upgate_columns},
                         {"down_columns", fps[k].down_columns}});
  }
  nlohmann::json j = {
      {"model", m.path()},
      {"shape",
       {{"d_model", base.shape.d_model},
        {"d_ff", base.shape.d_ff},
        {"n_layer", base.shape.n_layer},
        {"n_head", base.shape.n_head},
        {"n_kv_head", base.shape.n_kv_head},
        {"vocab", base.shape.vocab}}},
      {"projection", projecting ? nlohmann::json{{"shape", base.shape.name},
                                                 {"accuracy_from", from ? sim.accuracy : m.path()},
                                                 {"synthetic_tokens", sim.tokens},
                                                 {"skew", sim.skew}}
                                : nlohmann::json(nullptr)},
      {"text_tokens", toks.size()},
      {"ctx", ctx},
      {"chunks", ref_chunks},
      {"scored", ref_scored},
      {"dense_ppl", dense_ppl},
      {"device",
       {{"name", base.device.name},
        {"dram_bw", base.device.dram_bw},
        {"flash_bw", base.device.flash_bw},
        {"source", base.device.source}}},
      {"bits", base.bits},
      {"policy", sim_policy_name(base.policy)},
      {"prompt", base.prompt},
      {"gen", base.gen},
      {"static_bytes", full.static_bytes},
      {"mlp_bytes", full.mlp},
      {"dram_sizes", dram_json},
      {"flash_bws", bws},
      {"budgets_pct", budgets},
      {"accuracy", acc_rows},
      {"rows", sim_rows},
      {"comparisons", cmp_rows},
      {"seconds", secs},
      {"simulator_seconds", sim_seconds},
      {"simulator_events", events}};
  write_file_atomically(out + "/simulate.json", j.dump(1) + "\n");

  print_note(fmt::format(
      "sweep --simulate: {} points ({} engine runs), {} simulated rows in {:.1f} s (simulator "
      "{:.1f} s, {:.1f} M column accesses/s); wrote {}/simulate.csv and simulate.json",
      runs.size(), from ? size_t(0) : runs.size(), sim_rows.size(), secs, sim_seconds,
      double(events) / std::max(1e-9, sim_seconds) / 1e6, out));
  return j;
}

}  // namespace dip
