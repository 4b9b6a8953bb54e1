#include "api/simulate.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "api/flash_setup.h"
#include "flash/flash_probe.h"
#include "model/model.h"
#include "sparsity/trace.h"
#include "util/clock.h"
#include "util/error.h"

namespace dip {

SimulateResult simulate_device(const SimulateOptions& o) {
  SimConfig cfg;
  if (!o.model.empty()) {
    auto m = Model::load(o.model);
    cfg.shape = shape_of(*m);
  } else {
    cfg.shape = shape_preset(o.shape);
  }
  cfg.bits = o.bits;
  cfg.device = device_preset(o.device);
  std::optional<FlashProbe> probe;
  if (!o.flash_probe.empty()) {
    probe = read_probe(o.flash_probe);
    cfg.device.name += " (flash probed)";
    cfg.device.source = "dip flash-probe " + o.flash_probe;
    cfg.device.flash_bw = probe->bandwidth;
    cfg.device.flash_iops = probe->iops();
    cfg.device.request_cpu = probe->request_cpu_s;
    cfg.device.flash_latency = 0;  // the fit's request cost holds it, at a full queue
  }
  if (o.flash_gap == "auto") {
    if (!probe) fail("--flash-gap auto takes the probe's gap: give --flash-probe FILE");
    cfg.read_gap = probe->gap_bytes;
  } else {
    cfg.read_gap = parse_read_gap(o.flash_gap);
  }
  for (const auto& v : {o.dram_bw, o.flash_bw, o.dram_size}) {
    if (v && !(*v > 0)) fail("--dram-bw, --flash-bw and --dram-size must be positive (got {})", *v);
  }
  if (o.dram_bw || o.flash_bw || o.dram_size) cfg.device.name += " (modified)";
  if (o.dram_bw) cfg.device.dram_bw = *o.dram_bw * 1e9;
  if (o.flash_bw) cfg.device.flash_bw = *o.flash_bw * 1e9;
  if (o.dram_size) cfg.device.dram_size = *o.dram_size * 1e9;
  if (o.flash_iops) {
    if (!(*o.flash_iops >= 0)) fail("--flash-iops must not be negative (got {})", *o.flash_iops);
    cfg.device.flash_iops = *o.flash_iops;
  }
  for (const auto& v : {o.flash_latency_us, o.compute_gflops, o.request_cpu_us}) {
    if (v && !(*v >= 0))
      fail(
          "--flash-latency-us, --compute-gflops and --request-cpu-us must not be negative (got "
          "{})",
          *v);
  }
  if (o.request_cpu_us) cfg.device.request_cpu = *o.request_cpu_us * 1e-6;
  if (o.flash_latency_us) cfg.device.flash_latency = *o.flash_latency_us * 1e-6;
  cfg.device.flash_qd = o.flash_qd;
  if (o.compute_gflops) cfg.device.compute_flops = *o.compute_gflops * 1e9;
  cfg.compute_serial = o.compute_serial;
  cfg.requests_serial = o.requests_serial || probe.has_value();
  cfg.bundle = o.bundle;
  cfg.split = parse_cache_split(o.split);
  cfg.prompt = o.prompt;
  cfg.gen = o.gen;
  cfg.policy = parse_sim_policy(o.policy);
  cfg.concurrent = !o.sequential;
  cfg.warm_tokens = o.warm_tokens;
  footprint(cfg);  // impossible devices fail before any trace work
  const auto t0 = Clock::now();
  std::vector<TokenMasks> masks;
  std::string source;
  if (o.gamma && !o.trace.empty())
    fail("--gamma synthesizes cache-aware masks; a --trace has its own");
  if (!o.trace.empty()) {
    masks = masks_from_trace(read_trace(o.trace), cfg.shape);
    source = "trace " + o.trace;
  } else {
    const Footprint fp = footprint(cfg);
    const CacheAwareSynthesis ca{o.gamma.value_or(1.0), fp.upgate_columns, fp.down_columns,
                                 cfg.policy};
    masks = synthetic_masks(cfg.shape, std::max<uint32_t>(1, o.gen), o.density, o.skew, o.seed,
                            o.gamma ? &ca : nullptr);
    source = fmt::format("synthetic {} masks, density {}, skew {}{}", o.gamma ? "DIP-CA" : "DIP",
                         o.density, o.skew, o.gamma ? fmt::format(", gamma {}", *o.gamma) : "");
  }
  const SimResult r = simulate(cfg, masks);
  const double secs = seconds_since(t0);
  const Footprint& f = r.fp;
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
                      {"read_gap", cfg.read_gap},
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
  return {cfg, masks.size(), source, r, secs, j};
}

}  // namespace dip
