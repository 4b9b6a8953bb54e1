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

#include "api/flash_sweep.h"
#include "api/model_files.h"
#include "api/sim_sweep.h"
#include "api/sweep.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "eval/sparse_eval.h"
#include "io/mapped_file.h"
#include "model/forward.h"
#include "model/model.h"
#include "sparsity/masker.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/number_list.h"
#include "util/output_file.h"
#include "util/progress.h"

namespace dip::cli {

namespace {

// The headline table of a simulated sweep: per flash speed, method and accuracy budget, the gain
// at equal memory and the memory saved at dense streaming's throughput.
void print_sim_table(const nlohmann::json& j) {
  if (!j["projection"].is_null()) {
    const auto& p = j["projection"];
    std::printf(
        "SHAPE-ONLY PROJECTION onto %s: synthetic masks (%u tokens, skew %g), accuracy from %s\n",
        p["shape"].get<std::string>().c_str(), p["synthetic_tokens"].get<uint32_t>(),
        p["skew"].get<double>(), p["accuracy_from"].get<std::string>().c_str());
  }
  std::printf(
      "device %s (DRAM %.0f GB/s), %.0f-bit weights, policy %s; dense PPL %.4f over %zu scored "
      "tokens\n",
      j["device"]["name"].get<std::string>().c_str(), j["device"]["dram_bw"].get<double>() / 1e9,
      j["bits"].get<double>(), j["policy"].get<std::string>().c_str(), j["dense_ppl"].get<double>(),
      j["scored"].get<size_t>());
  std::printf("%-9s %-8s %-7s %-10s %-10s %-10s %-26s %-14s\n", "flash", "method",
              "ppl<=", "DRAM MB", "dense t/s", "t/s", "gain at equal DRAM",
              "DRAM saved at dense t/s");
  for (const auto& c : j["comparisons"]) {
    const double equal_tps_dram = c["equal_tps_dram_bytes"].get<double>();
    const std::string saved =
        equal_tps_dram == 0
            ? "not reached"
            : fmt::format("{}{:.0f}%", c["reduction_is_lower_bound"].get<bool>() ? ">= " : "",
                          100.0 * c["memory_reduction"].get<double>());
    const double method_tps = c["method_tps"].get<double>();
    std::printf("%-9s %-8s %-7s %-10.1f %-10.2f %-10.2f %-26s %-14s\n",
                fmt::format("{:.2f}GB/s", c["flash_bw"].get<double>() / 1e9).c_str(),
                c["method"].get<std::string>().c_str(),
                fmt::format("{}%", c["max_ppl_increase_pct"].get<double>()).c_str(),
                c["dram_bytes"].get<double>() / 1e6, c["dense_tps"].get<double>(), method_tps,
                method_tps > 0 ? fmt::format("{:.2f}x ({})", c["gain"].get<double>(),
                                             c["best"].get<std::string>())
                                     .c_str()
                               : "none within",
                saved.c_str());
  }
}

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
  add_lora_opts(c, *o);
  c->add_option("-f,--file", *file, "calibration text (UTF-8)")->required();
  c->add_option("-o,--output", *out, "thresholds file to write (JSON)")->required();
  c->add_option("-c,--ctx-size", *ctx, "window size in tokens")->check(CLI::Range(16, 1 << 20));
  c->add_option("--max-tokens", *max_tokens, "use at most this many tokens of the text");
  c->callback([=] {
    check_output_path(*out, {resolve_model(o->model), *file});
    auto model = load_model(o->model, o->adapters());
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
  auto so = std::make_shared<SparsityOptions>();
  auto file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>("sweep");
  auto methods = std::make_shared<std::string>("dip,dip-ca,glu,cats,teal");
  auto densities = std::make_shared<std::string>("0.25,0.5,0.7,1.0");
  auto gammas = std::make_shared<std::string>("0.1,0.2,0.5");
  auto ctx = std::make_shared<uint32_t>(512);
  auto chunks = std::make_shared<size_t>(0);
  c->add_option("-m,--model", o->model, "GGUF model file");
  c->add_option("-t,--threads", o->threads, "threads")->check(CLI::Range(1, 1024));
  add_lora_opts(c, *o);
  c->add_option("-f,--file", *file, "text file (UTF-8)")->required();
  c->add_option("-o,--out", *out, "output folder (sweep.csv, sweep.json)");
  c->add_option("--methods", *methods, "comma-separated methods");
  c->add_option("--densities", *densities, "comma-separated MLP densities in (0, 1]");
  c->add_option("--gammas", *gammas, "comma-separated DIP-CA gammas in [0, 1]");
  c->add_option("-c,--ctx-size", *ctx, "window size in tokens")->check(CLI::Range(4, 1 << 20));
  c->add_option("--chunks", *chunks, "evaluate at most this many windows (0: all)");
  add_sparsity_opts(c, *so, false);
  auto fo = std::make_shared<FlashOptions>();
  auto budgets = std::make_shared<std::string>();
  add_flash_opts(c, *fo);
  c->add_option(
      "--budgets", *budgets,
      "with --flash: comma-separated budgets, MLP cache shares (25%,50%) or DRAM sizes (300MiB)");
  auto sim = std::make_shared<SimSweepOptions>();
  add_sim_sweep_opts(c, *sim);
  c->callback([=] {
    check_output_files(*out,
                       {"sweep.csv", "sweep.json", "flash_sweep.csv", "flash_sweep.json",
                        "simulate.csv", "simulate.json"},
                       {resolve_model(o->model), *file, so->thresholds, fo->image});
    auto model = load_model(o->model, o->adapters());
    const std::vector<int32_t> toks = text_tokens(*model, *file);
    const uint64_t overhead_rss = current_rss();
    const std::vector<std::string> budget_list = split_commas(*budgets);
    if (fo->enabled() && budget_list.empty())
      fail("sweep --flash needs --budgets (e.g. 25%,50%,75%)");
    if (!fo->enabled() && !budget_list.empty()) fail("--budgets needs --flash IMAGE");
    if (!fo->budget.empty() || !fo->mlp_cache.empty())
      fail("sweep takes its budgets from --budgets");
    std::unique_ptr<Thresholds> thr;
    if (!so->thresholds.empty())
      thr = std::make_unique<Thresholds>(load_thresholds(so->thresholds, *model));
    const SweepPlan plan =
        plan_sweep(split_commas(*methods), parse_number_list(*densities, "--densities"),
                   parse_number_list(*gammas, "--gammas"), thr != nullptr);
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
      for (const auto& s : plan.skipped)
        print_note(fmt::format("sweep: skipping {} (below the method's minimum MLP density)", s));
      print_sim_table(run_sim_sweep(*model, toks, plan.points, *sim, *so, thr.get(), *ctx, *chunks,
                                    o->threads, *out));
    } else if (fo->enabled()) {
      for (const auto& s : plan.skipped)
        print_note(fmt::format("sweep: skipping {} (below the method's minimum MLP density)", s));
      run_flash_sweep(*model, toks, plan.points, budget_list, *fo, *so, *ctx, *chunks, o->threads,
                      overhead_rss, *out);
    } else {
      run_accuracy_sweep(*model, toks, plan, *so, thr.get(), *ctx, *chunks, o->threads, *file,
                         *out);
    }
  });
}

}  // namespace dip::cli
