#include "api/flash_setup.h"

#include <algorithm>
#include <cstdio>

#include "io/mapped_file.h"
#include "model/model.h"
#include "sparsity/sparse_mlp.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/threadpool.h"

namespace dip {

uint32_t parse_read_gap(const std::string& s) {
  if (s == "0") return 0;
  BudgetSpec g;
  try {
    g = parse_budget(s, "--flash-gap");
  } catch (const Error&) {
    g.fraction = 1;  // reported below
  }
  if (g.fraction > 0 || g.bytes > (16u << 20))
    fail("--flash-gap '{}' must be a size of at most 16MiB (e.g. 32KiB), 0 or auto", s);
  return uint32_t(g.bytes);
}

std::unique_ptr<FlashRun> make_flash_run(const Model& m, const FlashOptions& o, uint32_t n_ctx,
                                         uint32_t n_logits, int n_threads, uint64_t overhead_rss,
                                         uint32_t max_batch) {
  if (!o.enabled()) {
    if (!o.budget.empty() || !o.mlp_cache.empty() || !o.bandwidth.empty() || !o.latency.empty() ||
        o.buffered || o.verify || o.no_verify || o.io != "auto" || o.gap != "auto" ||
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
  const bool auto_gap = o.gap == "auto";
  if (!auto_gap) so.max_gap = parse_read_gap(o.gap);
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
  run->max_batch = max_batch ? max_batch : kFlashMaxBatch;
  run->image = std::make_unique<FlashImage>(o.image);
  run->image->check_matches(m);
  if (o.verify) run->image->verify_data(nullptr);
  if (auto_gap && !so.direct) {
    // Through the page cache: no device to measure, reads are memory copies.
    so.max_gap = 0;
  } else if (auto_gap && so.bandwidth > 0) {
    // An emulated flash: its own cost per request (the latency of a round of queue-depth
    // requests, shared by them) at its bandwidth.
    so.max_gap =
        break_even_gap(so.latency_s / so.queue_depth, so.bandwidth, run->image->header().align);
  } else if (auto_gap) {
    // The device's own break-even gap (flash/flash_probe.h): measured once, cached by the image.
    // What happened goes to the run report, not stderr: a run's stderr stays its error line.
    run->probe = cached_probe(*run->image, so.queue_depth, kAutoProbeSeconds,
                              [&](const std::string& line) { run->probe_note = line; });
    so.max_gap = run->probe->gap_bytes;
  }
  run->max_gap = so.max_gap;
  if (so.max_gap % run->image->header().align) {
    fail("--flash-gap {} is not a multiple of the image's {}-byte alignment", o.gap,
         run->image->header().align);
  }
  run->plan =
      plan_dram(m, *run->image, spec, n_ctx, run->max_batch, n_logits, n_threads, overhead_rss);
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
      {"flash_bounced_requests_per_token", double(fs.bounced_requests) / n},
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
      {"flash_gap", run.max_gap},
      {"prefetch", fc.prefetch_enabled()},
      {"prefetch_bundles_per_token", double(ms.prefetched) / n},
      {"prefetch_bytes_per_token", double(fc.stats().prefetch_bytes) / n},
      {"prefetch_used", ms.prefetched ? double(ms.prefetch_used) / double(ms.prefetched) : 0.0},
  };
  if (run.probe) {
    r["flash_probe"] = {{"request_us", run.probe->request_s * 1e6},
                        {"bandwidth_bytes_per_s", run.probe->bandwidth},
                        {"request_cpu_us", run.probe->request_cpu_s * 1e6},
                        {"note", run.probe_note}};
  }
  return r;
}

CoactivationLayout write_flash(const Model& m, const std::string& out, const FlashWriteOptions& o,
                               const FlashProgress& progress) {
  CoactivationLayout layout;
  if (!o.layout_text.empty()) {
    const std::string text = read_text_file(o.layout_text);
    if (!is_valid_utf8(text)) fail("{}: not valid UTF-8 text", o.layout_text);
    std::vector<int32_t> toks = tokenize(m.vocab(), text, true, false);
    if (o.layout_tokens && toks.size() > o.layout_tokens) toks.resize(o.layout_tokens);
    layout = coactivation_layout(
        m, toks, o.layout_ctx, o.layout_density, o.threads > 0 ? o.threads : available_cores(),
        [&](size_t done, size_t total) { print_progress("layout", done, total, ""); });
    end_progress();
  }
  write_flash_image(m, out, o.align, progress, o.layout_text.empty() ? nullptr : &layout.slots);
  return layout;
}

}  // namespace dip
