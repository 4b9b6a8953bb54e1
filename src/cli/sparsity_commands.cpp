// `dip calibrate` (magnitude thresholds over a calibration text) and `dip sweep` (methods x
// MLP densities x DIP-CA gammas over a text: perplexity, KL and top-1 agreement against dense,
// achieved density and modelled cache hit rate; CSV + JSON for tools/plot_sweep.py).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/flash_opts.h"
#include "cli/flash_sweep.h"
#include "cli/sim_sweep.h"
#include "cli/sparsity_opts.h"
#include "eval/sparse_eval.h"
#include "io/mapped_file.h"
#include "model/forward.h"
#include "model/model.h"
#include "sparsity/masker.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"
#include "util/output_file.h"

namespace dip::cli {

namespace {

std::vector<int32_t> text_tokens(const Model& m, const std::string& file) {
  const std::string text = read_text_file(file);
  if (!is_valid_utf8(text)) fail("{}: not valid UTF-8 text", file);
  return tokenize(m.vocab(), text, true, false);
}

}  // namespace

void add_calibrate(CLI::App& app) {
  auto* c = app.add_subcommand("calibrate",
                               "calibrate magnitude thresholds (DIP threshold mode, CATS, TEAL)");
  auto o = std::make_shared<ModelOpts>();
  auto file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto ctx = std::make_shared<uint32_t>(512);
  auto max_tokens = std::make_shared<size_t>(65536);
  c->add_option("-m,--model", o->model, "GGUF model file");
  c->add_option("-t,--threads", o->threads, "threads")->check(CLI::Range(1, 1024));
  c->add_option("-f,--file", *file, "calibration text (UTF-8)")->required();
  c->add_option("-o,--output", *out, "thresholds file to write (JSON)")->required();
  c->add_option("-c,--ctx-size", *ctx, "window size in tokens")->check(CLI::Range(16, 1 << 20));
  c->add_option("--max-tokens", *max_tokens, "use at most this many tokens of the text");
  c->callback([=] {
    check_output_path(*out, {resolve_model(o->model), *file});
    auto model = Model::load(resolve_model(o->model));
    std::vector<int32_t> toks = text_tokens(*model, *file);
    if (*max_tokens && toks.size() > *max_tokens) toks.resize(*max_tokens);
    const auto t0 = Clock::now();
    const Thresholds t = calibrate(*model, toks, *ctx, o->threads, [](size_t done, size_t total) {
      print_progress("calibrate", done, total, "");
    });
    end_progress();
    save_thresholds(t, *out);
    std::fprintf(stderr, "calibrated on %zu tokens in %.1f s; wrote %s\n", toks.size(),
                 seconds_since(t0), out->c_str());
  });
}

void add_sweep(CLI::App& app) {
  auto* c = app.add_subcommand(
      "sweep", "accuracy of pruning methods x MLP densities (x DIP-CA gamma) over a text");
  auto o = std::make_shared<ModelOpts>();
  auto so = std::make_shared<SparsityOpts>();
  auto file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>("sweep");
  auto methods = std::make_shared<std::string>("dip,dip-ca,glu,cats,teal");
  auto densities = std::make_shared<std::string>("0.25,0.5,0.7,1.0");
  auto gammas = std::make_shared<std::string>("0.1,0.2,0.5");
  auto ctx = std::make_shared<uint32_t>(512);
  auto chunks = std::make_shared<size_t>(0);
  c->add_option("-m,--model", o->model, "GGUF model file");
  c->add_option("-t,--threads", o->threads, "threads")->check(CLI::Range(1, 1024));
  c->add_option("-f,--file", *file, "text file (UTF-8)")->required();
  c->add_option("-o,--out", *out, "output folder (sweep.csv, sweep.json)");
  c->add_option("--methods", *methods, "comma-separated methods");
  c->add_option("--densities", *densities, "comma-separated MLP densities in (0, 1]");
  c->add_option("--gammas", *gammas, "comma-separated DIP-CA gammas in [0, 1]");
  c->add_option("-c,--ctx-size", *ctx, "window size in tokens")->check(CLI::Range(4, 1 << 20));
  c->add_option("--chunks", *chunks, "evaluate at most this many windows (0: all)");
  add_sparsity_opts(c, *so, false);
  auto fo = std::make_shared<FlashOpts>();
  auto budgets = std::make_shared<std::string>();
  add_flash_opts(c, *fo);
  c->add_option(
      "--budgets", *budgets,
      "with --flash: comma-separated budgets, MLP cache shares (25%,50%) or DRAM sizes (300MiB)");
  auto sim = std::make_shared<SimSweepOpts>();
  add_sim_sweep_opts(c, *sim);
  c->callback([=] {
    check_output_files(*out,
                       {"sweep.csv", "sweep.json", "flash_sweep.csv", "flash_sweep.json",
                        "simulate.csv", "simulate.json"},
                       {resolve_model(o->model), *file, so->thresholds, fo->image});
    auto model = Model::load(resolve_model(o->model));
    const std::vector<int32_t> toks = text_tokens(*model, *file);
    const uint64_t overhead_rss = current_rss();
    const std::vector<std::string> budget_list = split_commas(*budgets);
    if (fo->enabled() && budget_list.empty())
      fail("sweep --flash needs --budgets (e.g. 25%,50%,75%)");
    if (!fo->enabled() && !budget_list.empty()) fail("--budgets needs --flash IMAGE");
    if (!fo->budget.empty() || !fo->mlp_cache.empty())
      fail("sweep takes its budgets from --budgets");
    std::vector<Method> ms;
    {
      std::stringstream ss(*methods);
      std::string m;
      while (std::getline(ss, m, ',')) ms.push_back(parse_method(m));
    }
    const std::vector<double> ds = parse_number_list(*densities, "--densities"),
                              gs = parse_number_list(*gammas, "--gammas");
    for (double d : ds) {
      if (!(d > 0 && d <= 1)) fail("--densities: {} is outside (0, 1]", d);
    }
    for (double g : gs) {
      if (!(g >= 0 && g <= 1)) fail("--gammas: {} is outside [0, 1]", g);
    }
    std::unique_ptr<Thresholds> thr;
    if (!so->thresholds.empty())
      thr = std::make_unique<Thresholds>(load_thresholds(so->thresholds, *model));
    // Every point of the sweep, checked before any runs.
    using Point = SweepPoint;
    std::vector<Point> points;
    std::vector<std::string> skipped;
    for (Method m : ms) {
      const Masker& masker = masker_for(m);
      if (masker.always_thresholds() && !thr) {
        fail("{} needs calibrated thresholds: give --thresholds FILE (from `dip calibrate`)",
             masker.name());
      }
      for (double d : ds) {
        if (masker.shape() == MlpShape::kAllColumns) continue;
        if (d < masker.min_density()) {
          skipped.push_back(fmt::format("{} at {}", masker.name(), d));
          continue;
        }
        if (masker.cache_aware()) {
          for (double g : gs) points.push_back({m, d, g});
        } else {
          points.push_back({m, d, 1.0});
        }
      }
    }
    for (const auto& s : skipped)
      std::fprintf(stderr, "sweep: skipping %s (below the method's minimum MLP density)\n",
                   s.c_str());
    for (const char* f : {"--sim-device", "--sim-dram", "--sim-flash-bw", "--sim-bits",
                          "--sim-policy", "--sim-budgets", "--keep-traces", "--sim-shape",
                          "--sim-tokens", "--sim-accuracy", "--sim-skew"}) {
      if (!sim->enabled && c->count(f) > 0) fail("{} needs --simulate", f);
    }
    if (sim->enabled) {
      if (fo->enabled())
        fail(
            "sweep: --simulate models the device; --flash runs the MLP on this machine's flash; "
            "give one");
      run_sim_sweep(*model, toks, points, *sim, *so, thr.get(), *ctx, *chunks, o->threads, *out);
      return;
    }
    if (fo->enabled()) {
      run_flash_sweep(*model, toks, points, budget_list, *fo, *so, *ctx, *chunks, o->threads,
                      overhead_rss, *out);
      return;
    }
    std::filesystem::create_directories(*out);
    Session s(*model, *ctx, o->threads);
    DenseReference ref;
    nlohmann::json rows = nlohmann::json::array();
    std::ofstream csv(*out + "/sweep.csv");
    if (!csv) fail("{}/sweep.csv: cannot write", *out);
    csv << "method,target_density,gamma,cache_fraction,mlp_density,ppl,ppl_err,dense_ppl,ppl_"
           "increase_pct,kl,top1,"
           "hit_rate,up_hit_rate,down_hit_rate,seconds\n";
    const auto t_all = Clock::now();
    for (size_t i = 0; i < points.size(); ++i) {
      const Point& p = points[i];
      SparsityOpts po = *so;
      po.gamma = p.gamma;
      SparsityConfig cfg = make_config(*model, po, p.method, p.density);
      SparseMlp mlp(*model, cfg, thr.get());
      const std::string label = fmt::format(
          "[{}/{}] {} density {}{}", i + 1, points.size(), method_name(p.method), p.density,
          masker_for(p.method).cache_aware() ? fmt::format(" gamma {}", p.gamma) : "");
      const SparseEvalResult e = evaluate_sparse(
          s, mlp, toks, *ctx, *chunks, ref, [&](size_t done, size_t total, double ppl) {
            print_progress(label.c_str(), done, total, fmt::format("ppl {:.4f}", ppl));
          });
      end_progress();
      const double inc = 100.0 * (e.ppl.ppl / e.dense_ppl - 1.0);
      std::fprintf(
          stderr,
          "%s: PPL %.4f (dense %.4f, %+.2f%%), KL %.5f, top-1 %.4f, density %.3f, hit rate %.3f\n",
          label.c_str(), e.ppl.ppl, e.dense_ppl, inc, e.kl, e.top1, e.stats.density(),
          e.stats.hit_rate());
      csv << fmt::format(
          "{},{},{},{},{:.5f},{:.5f},{:.5f},{:.5f},{:.4f},{:.6f},{:.5f},{:.5f},{:.5f},{:.5f},{:.2f}"
          "\n",
          method_name(p.method), p.density, p.gamma, cfg.cache_fraction, e.stats.density(),
          e.ppl.ppl, e.ppl.ppl_err, e.dense_ppl, inc, e.kl, e.top1, e.stats.hit_rate(),
          e.stats.up_hit_rate(), e.stats.down_hit_rate(), e.ppl.seconds);
      csv.flush();
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
    nlohmann::json j = {{"model", model->path()},
                        {"text", *file},
                        {"ctx", *ctx},
                        {"chunks", ref.chunks},
                        {"scored", ref.scored},
                        {"dense_ppl", ref.ppl()},
                        {"threshold_mode", so->threshold_mode},
                        {"thresholds", so->thresholds},
                        {"skipped", skipped},
                        {"rows", rows},
                        {"seconds", seconds_since(t_all)}};
    write_file_atomically(*out + "/sweep.json", j.dump(1) + "\n");
    std::fprintf(stderr, "sweep: %zu points in %.1f s; wrote %s/sweep.csv and sweep.json\n",
                 points.size(), seconds_since(t_all), out->c_str());
  });
}

}  // namespace dip::cli
