#include "cli/flash_opts.h"

#include <cstdio>

#include "model/model.h"
#include "sparsity/sparse_mlp.h"
#include "util/error.h"

namespace dip::cli {

void add_flash_opts(CLI::App* c, FlashOpts& o) {
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
      "flash runs: join two reads whose gap is at most this (e.g. 16KiB; 0: exact reads)");
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

std::unique_ptr<FlashRun> make_flash_run(const Model& m, const FlashOpts& o, uint32_t n_ctx,
                                         uint32_t n_logits, int n_threads, uint64_t overhead_rss) {
  if (!o.enabled()) {
    if (!o.budget.empty() || !o.mlp_cache.empty() || !o.bandwidth.empty() || !o.latency.empty() ||
        o.buffered || o.verify || o.no_verify || o.io != "auto" || o.gap != "0" ||
        o.prefetch != "off") {
      fail(
          "--dram-budget, --mlp-cache, --flash-bw, --flash-latency, --flash-io, --flash-gap, "
          "--flash-prefetch, --flash-buffered, --flash-verify and --no-verify need --flash IMAGE");
    }
    return nullptr;
  }
  if (o.budget.empty() == o.mlp_cache.empty())
    fail("--flash needs one of --dram-budget (e.g. 300MiB or 50%) and --mlp-cache (e.g. 25%)");
  FlashStoreOptions so;
  if (o.io == "auto")
    so.io = FlashIo::kAuto;
  else if (o.io == "uring")
    so.io = FlashIo::kUring;
  else if (o.io == "pread")
    so.io = FlashIo::kPread;
  else
    fail("unknown --flash-io '{}': use auto, uring or pread", o.io);
  if (o.prefetch != "on" && o.prefetch != "off")
    fail("unknown --flash-prefetch '{}': use on or off", o.prefetch);
  so.direct = !o.buffered;
  so.verify_columns = !o.no_verify;
  so.bandwidth = o.bandwidth.empty() ? 0 : parse_bandwidth(o.bandwidth);
  so.latency_s = o.latency.empty() ? 0 : parse_duration(o.latency);
  so.queue_depth = o.queue_depth;
  if (o.gap != "0") {
    const BudgetSpec g = parse_budget(o.gap, "--flash-gap");
    if (g.fraction > 0 || g.bytes > (16u << 20))
      fail("--flash-gap '{}' must be a size of at most 16MiB", o.gap);
    so.max_gap = uint32_t(g.bytes);
  }
  BudgetSpec spec;
  if (!o.budget.empty()) {
    spec = parse_budget(o.budget, "--dram-budget");
  } else {
    const BudgetSpec f = parse_budget(o.mlp_cache, "--mlp-cache");
    if (f.fraction <= 0) fail("--mlp-cache '{}' must be a percentage, e.g. 25%", o.mlp_cache);
    spec.mlp_fraction = f.fraction;
  }
  auto run = std::make_unique<FlashRun>();
  run->overhead_rss = overhead_rss;
  run->image = std::make_unique<FlashImage>(o.image);
  run->image->check_matches(m);
  if (o.verify) run->image->verify_data(nullptr);
  if (so.max_gap % run->image->header().align) {
    fail("--flash-gap {} is not a multiple of the image's {}-byte alignment", o.gap,
         run->image->header().align);
  }
  run->plan = plan_dram(m, *run->image, spec, n_ctx, kFlashMaxBatch, n_logits, n_threads,
                        so.max_gap, overhead_rss);
  run->columns = std::make_unique<FlashColumns>(*run->image, so, run->plan.cache_fraction);
  run->columns->set_prefetch_enabled(o.prefetch == "on");
  return run;
}

nlohmann::json flash_report(const FlashRun& run, const SparseMlp& mlp, size_t tokens,
                            double seconds) {
  const FlashColumns& fc = *run.columns;
  const FlashStats& fs = fc.store().stats();
  const MlpStats& ms = mlp.stats();
  const DramPlan& p = run.plan;
  const double n = tokens > 0 ? double(tokens) : 1.0;
  const double wait = fs.wait_s, mlp_s = ms.seconds;
  const uint64_t peak = peak_rss();
  const uint64_t limit = p.budget;  // the whole process, its code and libraries included
  nlohmann::json r = {
      {"tokens", tokens},
      {"seconds", seconds},
      {"tokens_per_second", seconds > 0 ? double(tokens) / seconds : 0.0},
      {"flash_wait_s", wait},
      {"flash_throttle_s", fs.throttle_s},
      {"mlp_compute_s", std::max(0.0, mlp_s - wait)},
      {"other_s", std::max(0.0, seconds - mlp_s)},
      {"flash_bytes_per_token", double(fs.bytes) / n},
      {"flash_requests_per_token", double(fs.requests) / n},
      {"flash_gap_bytes_per_token", double(fs.gap_bytes) / n},
      {"flash_read_bandwidth", fs.read_busy_s > 0 ? double(fs.bytes) / fs.read_busy_s : 0.0},
      {"flash_bytes_per_wait_s", wait > 0 ? double(fs.bytes) / wait : 0.0},
      {"dram_column_bytes_per_token",
       double(fc.stats().dram_bytes[0] + fc.stats().dram_bytes[1]) / n},
      {"hit_rate", ms.hit_rate()},
      {"up_hit_rate", ms.up_hit_rate()},
      {"down_hit_rate", ms.down_hit_rate()},
      {"mlp_density", ms.density()},
      {"cache_fraction", p.cache_fraction},
      {"cache_columns_up", fc.capacity(true)},
      {"cache_columns_down", fc.capacity(false)},
      {"budget", p.budget},
      {"resident_weights", p.resident_weights},
      {"kv_cache", p.kv_cache},
      {"buffers", p.buffers + p.staging + p.cache_meta},
      {"cache_bytes", fc.slab_bytes()},
      {"overhead_rss", run.overhead_rss},
      {"peak_rss", peak},
      {"within_budget", peak <= limit},
      {"io", fc.store().mode()},
      {"prefetch", fc.prefetch_enabled()},
      {"prefetch_bundles_per_token", double(ms.prefetched) / n},
      {"prefetch_bytes_per_token", double(fc.stats().prefetch_bytes) / n},
      {"prefetch_used", ms.prefetched ? double(ms.prefetch_used) / double(ms.prefetched) : 0.0},
  };
  return r;
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
