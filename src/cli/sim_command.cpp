// `dip simulate`: the paper's hardware model over a recorded or synthetic mask trace.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "api/simulate.h"
#include "cli/commands.h"

namespace dip::cli {

void add_simulate(CLI::App& app) {
  auto* c = app.add_subcommand(
      "simulate", "tokens/s and memory of a device with DRAM + flash (the paper's model)");
  auto o = std::make_shared<SimulateOptions>();
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
  c->add_option("--flash-probe", o->flash_probe,
                "the flash of a `dip flash-probe` file: its bandwidth, request cost (added to the "
                "transfer) and host CPU per request");
  c->add_option("--flash-gap", o->flash_gap,
                "reads joined across gaps of at most this size, as the engine's --flash-gap (e.g. "
                "16KiB; auto: the probe's)");
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
    const SimulateResult sr = simulate_device(*o);
    const SimConfig& cfg = sr.cfg;
    const SimResult& r = sr.r;
    const std::string& source = sr.source;
    const double secs = sr.seconds;
    const Footprint& f = r.fp;
    std::printf(
        "model %s (%u layers, d %u, d_ff %u), %.0f-bit weights; device %s: DRAM %.4g GB at %.1f "
        "GB/s, flash %.2f GB/s\n",
        cfg.shape.name.c_str(), cfg.shape.n_layer, cfg.shape.d_model, cfg.shape.d_ff, cfg.bits,
        cfg.device.name.c_str(), cfg.device.dram_size / 1e9, cfg.device.dram_bw / 1e9,
        cfg.device.flash_bw / 1e9);
    std::printf(
        "masks: %s, %zu tokens; policy %s, reads %s; %u column(s) per unit, %s cache split\n",
        source.c_str(), sr.tokens, sim_policy_name(cfg.policy),
        cfg.concurrent ? "concurrent (max)" : "sequential (sum)", cfg.bundle,
        cache_split_name(cfg.split));
    if (cfg.device.flash_iops > 0)
      std::printf("flash %.0f requests/s (%s the transfer), reads joined across gaps of %u bytes\n",
                  cfg.device.flash_iops, cfg.requests_serial ? "added to" : "overlapping",
                  cfg.read_gap);
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
    if (o->json) std::printf("%s\n", sr.json.dump().c_str());
  });
}

}  // namespace dip::cli
