// `dip simulate`: the paper's hardware model over a recorded or synthetic mask trace.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "model/model.h"
#include "sim/hardware_model.h"
#include "sparsity/trace.h"
#include "util/error.h"

namespace dip::cli {

void add_simulate(CLI::App& app) {
  auto* c = app.add_subcommand(
      "simulate", "tokens/s and memory of a device with DRAM + flash (the paper's model)");
  struct Opts {
    std::string shape = "default", model, device = "a18", policy = "lru", trace, split = "uniform";
    double bits = 16, density = 1.0, skew = 1.0;
    std::optional<double> gamma;
    std::optional<double> dram_bw, flash_bw, dram_size, flash_iops, flash_latency_us,
        compute_gflops, request_cpu_us;  // unset: the preset's
    uint32_t prompt = 128, gen = 128, warm_tokens = 0, bundle = 1, flash_qd = 0;
    bool compute_serial = false, requests_serial = false;
    uint64_t seed = 1;
    bool sequential = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  c->add_option("--shape", o->shape,
                "model shape preset: phi-3-medium, phi-3-mini, llama-3-8b, mistral-7b, default");
  c->add_option("-m,--model", o->model,
                "take the shape from this GGUF file or Hugging Face folder instead");
  c->add_option("--bits", o->bits, "bits per weight (16, 8, 4)");
  c->add_option(
      "--device", o->device,
      "device preset: a18, snapdragon-8-gen-3, snapdragon-8-elite, laptop-x-elite, this-machine");
  c->add_option("--dram-bw", o->dram_bw, "DRAM bandwidth in GB/s (overrides the preset)");
  c->add_option("--flash-bw", o->flash_bw, "flash bandwidth in GB/s (overrides the preset)");
  c->add_option("--dram-size", o->dram_size, "DRAM size in GB (overrides the preset)");
  c->add_option("--warm-tokens", o->warm_tokens,
                "the trace's first N tokens fill the caches but are not counted");
  c->add_option("--flash-iops", o->flash_iops,
                "flash read requests per second (0: unlimited, the paper's model)");
  c->add_option("--flash-latency-us", o->flash_latency_us,
                "round trip of one batch of flash reads in microseconds (0: none)");
  c->add_option("--flash-qd", o->flash_qd,
                "with --flash-latency-us: requests in flight; a batch pays one round trip per QD "
                "requests (0: one per batch)")
      ->check(CLI::Range(0u, 1u << 20));
  c->add_option(
      "--request-cpu-us", o->request_cpu_us,
      "host CPU microseconds per flash read request, added to the token's time (0: none)");
  c->add_option("--compute-gflops", o->compute_gflops,
                "matrix-vector GFLOP/s the device sustains (0: no compute term)");
  c->add_flag("--compute-serial", o->compute_serial,
              "compute follows the memory reads (sum) instead of overlapping them (roofline max)");
  c->add_flag("--requests-serial", o->requests_serial,
              "a read request's fixed cost adds to its transfer time (bytes/BW + requests/IOPS) "
              "instead of max()");
  c->add_option("--bundle", o->bundle,
                "columns per cache and read unit (bundles of adjacent columns; 1: the paper's)")
      ->check(CLI::Range(1u, 1u << 20));
  c->add_option("--split", o->split,
                "MLP cache split over the matrices: uniform (the paper's) or traffic (by bytes "
                "kept per token)");
  c->add_option("--prompt", o->prompt, "prompt tokens");
  c->add_option("--gen", o->gen, "generated tokens (also the synthetic trace's length)");
  c->add_option("--policy", o->policy, "eviction: none, lru, lfu, belady");
  c->add_flag("--sequential", o->sequential,
              "flash and DRAM reads do not overlap (f = sum, not max)");
  c->add_option("--trace", o->trace,
                "mask trace recorded by the engine (--trace); else synthetic masks");
  c->add_option("--density", o->density, "synthetic masks: DIP MLP density (1 = dense streaming)");
  c->add_option("--skew", o->skew, "synthetic masks: sigma of the log-normal column popularity");
  c->add_option("--gamma", o->gamma,
                "synthetic masks: DIP-CA against the live simulated cache with this gamma");
  c->add_option("--seed", o->seed, "synthetic masks: seed");
  c->add_flag("--json", o->json, "print one JSON object as the last line");
  c->callback([o] {
    SimConfig cfg;
    if (!o->model.empty()) {
      auto m = Model::load(o->model);
      cfg.shape = shape_of(*m);
    } else {
      cfg.shape = shape_preset(o->shape);
    }
    cfg.bits = o->bits;
    cfg.device = device_preset(o->device);
    for (const auto& v : {o->dram_bw, o->flash_bw, o->dram_size}) {
      if (v && !(*v > 0))
        fail("--dram-bw, --flash-bw and --dram-size must be positive (got {})", *v);
    }
    if (o->dram_bw || o->flash_bw || o->dram_size) cfg.device.name += " (modified)";
    if (o->dram_bw) cfg.device.dram_bw = *o->dram_bw * 1e9;
    if (o->flash_bw) cfg.device.flash_bw = *o->flash_bw * 1e9;
    if (o->dram_size) cfg.device.dram_size = *o->dram_size * 1e9;
    if (o->flash_iops) {
      if (!(*o->flash_iops >= 0))
        fail("--flash-iops must not be negative (got {})", *o->flash_iops);
      cfg.device.flash_iops = *o->flash_iops;
    }
    for (const auto& v : {o->flash_latency_us, o->compute_gflops, o->request_cpu_us}) {
      if (v && !(*v >= 0))
        fail(
            "--flash-latency-us, --compute-gflops and --request-cpu-us must not be negative (got "
            "{})",
            *v);
    }
    if (o->request_cpu_us) cfg.device.request_cpu = *o->request_cpu_us * 1e-6;
    if (o->flash_latency_us) cfg.device.flash_latency = *o->flash_latency_us * 1e-6;
    cfg.device.flash_qd = o->flash_qd;
    if (o->compute_gflops) cfg.device.compute_flops = *o->compute_gflops * 1e9;
    cfg.compute_serial = o->compute_serial;
    cfg.requests_serial = o->requests_serial;
    cfg.bundle = o->bundle;
    cfg.split = parse_cache_split(o->split);
    cfg.prompt = o->prompt;
    cfg.gen = o->gen;
    cfg.policy = parse_sim_policy(o->policy);
    cfg.concurrent = !o->sequential;
    cfg.warm_tokens = o->warm_tokens;
    footprint(cfg);  // impossible devices fail before any trace work
    const auto t0 = Clock::now();
    std::vector<TokenMasks> masks;
    std::string source;
    if (o->gamma && !o->trace.empty())
      fail("--gamma synthesizes cache-aware masks; a --trace has its own");
    if (!o->trace.empty()) {
      masks = masks_from_trace(read_trace(o->trace), cfg.shape);
      source = "trace " + o->trace;
    } else {
      const Footprint fp = footprint(cfg);
      const CacheAwareSynthesis ca{o->gamma.value_or(1.0), fp.upgate_columns, fp.down_columns,
                                   cfg.policy};
      masks = synthetic_masks(cfg.shape, std::max<uint32_t>(1, o->gen), o->density, o->skew,
                              o->seed, o->gamma ? &ca : nullptr);
      source =
          fmt::format("synthetic {} masks, density {}, skew {}{}", o->gamma ? "DIP-CA" : "DIP",
                      o->density, o->skew, o->gamma ? fmt::format(", gamma {}", *o->gamma) : "");
    }
    const SimResult r = simulate(cfg, masks);
    const double secs = seconds_since(t0);
    const Footprint& f = r.fp;
    std::printf(
        "model %s (%u layers, d %u, d_ff %u), %.0f-bit weights; device %s: DRAM %.4g GB at %.1f "
        "GB/s, flash %.2f GB/s\n",
        cfg.shape.name.c_str(), cfg.shape.n_layer, cfg.shape.d_model, cfg.shape.d_ff, cfg.bits,
        cfg.device.name.c_str(), cfg.device.dram_size / 1e9, cfg.device.dram_bw / 1e9,
        cfg.device.flash_bw / 1e9);
    std::printf(
        "masks: %s, %zu tokens; policy %s, reads %s; %u column(s) per unit, %s cache split\n",
        source.c_str(), masks.size(), sim_policy_name(cfg.policy),
        cfg.concurrent ? "concurrent (max)" : "sequential (sum)", cfg.bundle,
        cache_split_name(cfg.split));
    if (cfg.device.compute_flops > 0 || cfg.device.flash_latency > 0 ||
        cfg.device.request_cpu > 0) {
      std::printf(
          "compute %.1f GFLOP/s (%s), flash batch latency %.0f us, host CPU %.1f us per request\n",
          cfg.device.compute_flops / 1e9, cfg.compute_serial ? "after the reads" : "roofline",
          cfg.device.flash_latency * 1e6, cfg.device.request_cpu * 1e6);
      if (cfg.device.flash_qd > 0)
        std::printf("flash queue depth %u: one round trip per %u requests of a batch\n",
                    cfg.device.flash_qd, cfg.device.flash_qd);
    }
    std::printf(
        "DRAM: static %.3f GB (attention %.3f, KV %.3f, embeddings %.3f) + MLP cache %.3f GB of "
        "%.3f GB MLP\n",
        f.static_bytes / 1e9, f.attention / 1e9, f.kv_cache / 1e9, f.embeddings / 1e9,
        f.cache_bytes / 1e9, f.mlp / 1e9);
    std::printf("cache per layer: %llu of %u up/gate columns, %llu of %u down columns\n",
                (unsigned long long)f.upgate_columns, cfg.shape.d_model,
                (unsigned long long)f.down_columns, cfg.shape.d_ff);
    std::printf(
        "tokens/s %.3f | time to first token %.3f s | flash %.1f MB/token | hit rate %.3f\n",
        r.tokens_per_s, r.ttft, r.flash_bytes_per_token / 1e6, r.hit_rate);
    std::printf("%-6s %-14s %-14s\n", "layer", "up/gate hits", "down hits");
    for (uint32_t l = 0; l < cfg.shape.n_layer; ++l) {
      std::printf("%-6u %-14.3f %-14.3f\n", l, r.upgate_hit_rate[l], r.down_hit_rate[l]);
    }
    std::fprintf(stderr, "simulated %llu column accesses in %.3f s (%.1f M/s)\n",
                 (unsigned long long)r.events, secs, double(r.events) / secs / 1e6);
    if (o->json) {
      nlohmann::json j = {{"shape", cfg.shape.name},
                          {"bits", cfg.bits},
                          {"device", cfg.device.name},
                          {"dram_bw", cfg.device.dram_bw},
                          {"flash_bw", cfg.device.flash_bw},
                          {"dram_size", cfg.device.dram_size},
                          {"policy", sim_policy_name(cfg.policy)},
                          {"concurrent", cfg.concurrent},
                          {"tokens", masks.size()},
                          {"tokens_per_s", r.tokens_per_s},
                          {"ttft", r.ttft},
                          {"t_fixed", r.t_fixed},
                          {"t_dyn", r.t_dyn},
                          {"flash_bytes_per_token", r.flash_bytes_per_token},
                          {"flash_requests_per_token", r.flash_requests_per_token},
                          {"flash_iops", cfg.device.flash_iops},
                          {"hit_rate", r.hit_rate},
                          {"static_bytes", f.static_bytes},
                          {"bundle", cfg.bundle},
                          {"device_source", cfg.device.source},
                          {"split", cache_split_name(cfg.split)},
                          {"flash_latency", cfg.device.flash_latency},
                          {"flash_qd", cfg.device.flash_qd},
                          {"compute_flops", cfg.device.compute_flops},
                          {"compute_serial", cfg.compute_serial},
                          {"requests_serial", cfg.requests_serial},
                          {"compute_s_per_token", r.compute_s_per_token},
                          {"request_cpu", cfg.device.request_cpu},
                          {"request_cpu_s_per_token", r.request_cpu_s_per_token},
                          {"cache_bytes", f.cache_bytes},
                          {"upgate_columns", f.upgate_columns},
                          {"down_columns", f.down_columns},
                          {"upgate_hit_rate", r.upgate_hit_rate},
                          {"down_hit_rate", r.down_hit_rate},
                          {"events", r.events},
                          {"seconds", secs}};
      std::printf("%s\n", j.dump().c_str());
    }
  });
}

}  // namespace dip::cli
