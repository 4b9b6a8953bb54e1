#include "cli/flags.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>

#include "io/mapped_file.h"
#include "util/error.h"

namespace dip::cli {

void add_model_opts(CLI::App* c, ModelOpts& o, bool with_ctx) {
  c->add_option("-m,--model", o.model, "GGUF model file");
  c->add_option("-t,--threads", o.threads, "threads")->check(CLI::Range(1, 1024));
  if (with_ctx) {
    c->add_option("-c,--ctx,--ctx-size", o.ctx, "context size (default: the model's, at most 4096)")
        ->check(CLI::Range(1u, 1u << 20));
  }
  add_lora_opts(c, o);
}

void add_lora_opts(CLI::App* c, ModelOpts& o) {
  c->add_option("--lora", o.lora,
                "apply a LoRA adapter (llama.cpp GGUF adapter or PEFT folder; repeatable)");
  c->add_option("--lora-scaled", o.lora_scaled,
                "apply a LoRA adapter with its update scaled by SCALE (repeatable)")
      ->type_name("FILE SCALE");
}

std::vector<LoraSpec> ModelOpts::adapters() const {
  std::vector<LoraSpec> v;
  for (const auto& f : lora) v.push_back({f, 1.0f});
  for (const auto& [f, s] : lora_scaled) v.push_back({f, parse_lora_scale(f, s)});
  return v;
}

void add_sparsity_opts(CLI::App* c, SparsityOptions& o, bool with_method) {
  if (with_method) {
    c->add_option("--method", o.method, "MLP pruning: dense, dip, dip-ca, glu, cats, teal");
    c->add_option("--mlp-density", o.mlp_density,
                  "target MLP density in (0, 1] (DIP: split by the optimized formula)")
        ->check([](const std::string& s) -> std::string {
          char* end = nullptr;
          const double v = std::strtod(s.c_str(), &end);
          return end != s.c_str() && *end == 0 && v > 0 && v <= 1
                     ? ""
                     : "--mlp-density must be in (0, 1]";
        });
    c->add_option("--up-keep", o.up_keep, "fraction of up/gate columns kept (with --down-keep)");
    c->add_option("--down-keep", o.down_keep, "fraction of down columns kept (with --up-keep)");
    c->add_option("--keep-file", o.keep_file,
                  "per-layer keep fractions (JSON: {\"layers\": [{\"up\":u,\"down\":d}, ...]})");
    c->add_option("--trace", o.trace, "write the per-token masks (and cache hits) to this file");
  }
  c->add_flag("--kl-to-base", o.reference_without_lora,
              "with --lora: compare the pruned run with the dense model without the adapters");
  c->add_option("--thresholds", o.thresholds,
                "calibrated thresholds (from `dip calibrate`): cats, teal, dip --threshold-mode");
  c->add_flag("--threshold-mode", o.threshold_mode,
              "dip/dip-ca: keep by calibrated thresholds instead of per-token top-k");
  if (with_method)
    c->add_option("--gamma", o.gamma,
                  "dip-ca: weight of uncached columns' scores, in [0, 1] (default 0.2)");
  c->add_option("--fixed-top-n", o.fixed_top_n,
                "dip-ca: the n largest scores are never down-weighted");
  c->add_flag("--warmup", o.warmup, "dip-ca: gamma_t = 1 - (1-gamma)(1 - gamma^(t/4))");
  c->add_flag("--alpha-blend", o.alpha_blend, "dip-ca: s' = gamma*s + (1-gamma)*[cached]");
  c->add_option("--mask-block", o.mask_block,
                "top-k masks: keep columns in groups of N adjacent ones (fewer, larger flash "
                "reads); UP,DOWN: separately for the up+gate and the down masks (default 1)");
  c->add_option("--cache-fraction", o.cache_fraction,
                "modelled column cache per matrix, fraction of its columns, in [0, 1]");
  c->add_option("--cache-policy", o.policy, "modelled cache eviction: lru, lfu");
}

void add_flash_opts(CLI::App* c, FlashOptions& o) {
  c->add_option("--flash", o.image,
                "MLP weights from this flash image (`dip convert --flash`), read per token");
  c->add_option("--dram-budget", o.budget,
                "flash runs: DRAM for everything (weights, KV cache, buffers, column caches): "
                "300MiB, 1.5GB or 50% of the model");
  c->add_option("--mlp-cache", o.mlp_cache,
                "flash runs, instead of --dram-budget: the resident part plus this share of the "
                "MLP columns (e.g. 25%)");
  c->add_option("--flash-bw", o.bandwidth,
                "flash runs: emulate a flash of this read bandwidth (e.g. 1GB/s)");
  c->add_option("--flash-latency", o.latency,
                "flash runs: emulated latency per read request (e.g. 50us)");
  c->add_option("--flash-io", o.io, "flash runs: auto, uring (io_uring) or pread");
  c->add_option(
      "--flash-gap", o.gap,
      "flash runs: join two reads whose gap is at most this (e.g. 16KiB; 0: exact reads; auto, "
      "the default: the device's break-even gap, measured once as dip flash-probe does and cached "
      "beside the image; 0 with --flash-buffered, from the latency with --flash-bw)");
  c->add_option("--flash-qd", o.queue_depth, "flash runs: read requests in flight")
      ->check(CLI::Range(1, 4096));
  c->add_option("--flash-prefetch", o.prefetch,
                "flash runs: on or off (default): predict the next layer's up+gate mask from the "
                "residual stream and read it during that layer's attention");
  c->add_flag("--flash-buffered", o.buffered,
              "flash runs: read through the page cache instead of O_DIRECT (not a real flash run)");
  c->add_flag("--flash-verify", o.verify,
              "flash runs: check the whole image's CRCs before running");
  c->add_flag("--no-verify", o.no_verify,
              "flash runs: do not check each column read against its checksum (on by default)");
}

void add_sim_sweep_opts(CLI::App* c, SimSweepOptions& o) {
  c->add_flag(
      "--simulate", o.enabled,
      "also simulate every point on a device (DRAM sizes x flash speeds): simulate.csv/json");
  c->add_option("--sim-device", o.device,
                "device preset for --simulate (as `dip simulate --device`)");
  c->add_option(
      "--sim-dram", o.dram_sizes,
      "DRAM sizes: N% = the static part + N% of the MLP, or sizes (300MiB, 4GB), comma-separated");
  c->add_option("--sim-flash-bw", o.flash_bws,
                "flash speeds, comma-separated (e.g. 0.5GB/s,1GB/s; default: the device's)");
  c->add_option("--sim-bits", o.bits, "bits per weight in the simulated device (16, 8, 4)");
  c->add_option("--sim-policy", o.policy,
                "simulated eviction policy: lru, lfu (also DIP-CA's modelled cache), none, belady");
  c->add_option("--sim-budgets", o.budgets,
                "perplexity increases (%) the comparisons against dense streaming allow");
  c->add_flag("--keep-traces", o.keep_traces, "keep each point's mask trace under OUT/traces");
  c->add_option("--sim-shape", o.shape,
                "shape-only projection onto a preset shape (phi-3-medium, llama-3-8b, ...): "
                "synthetic masks, this model's accuracy");
  c->add_option("--sim-tokens", o.tokens, "projection: synthetic tokens per point")
      ->check(CLI::Range(2u, 1u << 20));
  c->add_option("--sim-accuracy", o.accuracy,
                "projection: take each point's accuracy from this model's earlier simulate.json "
                "instead of running it");
  c->add_option("--sim-skew", o.skew,
                "projection: sigma of the log-normal column popularity of the synthetic masks");
}

void add_sampling_opts(CLI::App* c, SamplingParams& sp) {
  c->add_option("--temp", sp.temperature, "temperature (0 = greedy)");
  c->add_option("--top-k", sp.top_k, "top-k (<= 0: off)");
  c->add_option("--top-p", sp.top_p, "top-p (1: off)");
  c->add_option("--min-p", sp.min_p, "min-p (0: off)");
  c->add_option("--repeat-penalty", sp.repeat_penalty, "repetition penalty (1: off)");
  c->add_option("--repeat-last-n", sp.repeat_last_n, "tokens the penalty looks back");
  c->add_option("-s,--seed", sp.seed, "random seed (default: a random one, printed)")
      ->default_str("random");
}

void finish_sampling_opts(const CLI::App* c, SamplingParams& sp) {
  if (c->count("--seed") == 0) sp.seed = random_seed();
  validate(sp);
}

std::string read_prompt(const std::string& prompt, const std::string& file) {
  if (!prompt.empty() && !file.empty()) fail("give the prompt with -p or with -f, not both");
  if (!file.empty()) return read_text_file(file);
  if (prompt == "-" || (prompt.empty() && !isatty(0))) {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) fail("cannot read the prompt from stdin");
    // A trailing newline ends what was typed or piped, it is not part of the prompt.
    if (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  }
  if (prompt.empty()) fail("no prompt: give -p TEXT, -f FILE, or pipe it on stdin");
  return prompt;
}

void print_flash_report(const nlohmann::json& r) {
  auto mb = [&](const char* k) { return r[k].get<double>() / 1048576.0; };
  std::fprintf(
      stderr,
      "flash run: %.2f tokens/s | per token: flash wait %.1f ms, MLP compute %.1f ms, "
      "other %.1f ms\n"
      "  flash: %.2f MiB/token in %.1f requests (%s), %.0f MB/s while reading | hit rate "
      "%.3f (up+gate %.3f, down %.3f)\n"
      "  DRAM: budget %.1f MiB = process %.1f (code, libraries, vocabulary, text) + weights %.1f + "
      "KV %.1f + buffers %.1f + column caches %.1f (%.1f%% of columns) | peak RSS %.1f MiB %s\n",
      r["tokens_per_second"].get<double>(),
      1e3 * r["flash_wait_s"].get<double>() / std::max(1.0, r["tokens"].get<double>()),
      1e3 * r["mlp_compute_s"].get<double>() / std::max(1.0, r["tokens"].get<double>()),
      1e3 * r["other_s"].get<double>() / std::max(1.0, r["tokens"].get<double>()),
      mb("flash_bytes_per_token"), r["flash_requests_per_token"].get<double>(),
      r["io"].get<std::string>().c_str(), r["flash_read_bandwidth"].get<double>() / 1e6,
      r["hit_rate"].get<double>(), r["up_hit_rate"].get<double>(), r["down_hit_rate"].get<double>(),
      mb("budget"), mb("overhead_rss"), mb("resident_weights"), mb("kv_cache"), mb("buffers"),
      mb("cache_bytes"), 100.0 * r["cache_fraction"].get<double>(), mb("peak_rss"),
      r["within_budget"].get<bool>() ? "(within budget)" : "(OVER BUDGET)");
  if (r["prefetch_bundles_per_token"].get<double>() > 0) {
    std::fprintf(stderr,
                 "  prefetch: %.1f up+gate bundles/token (%.2f MiB) read during the attention "
                 "before their layer, %.1f%% of them used\n",
                 r["prefetch_bundles_per_token"].get<double>(), mb("prefetch_bytes_per_token"),
                 100.0 * r["prefetch_used"].get<double>());
  }
}

}  // namespace dip::cli
